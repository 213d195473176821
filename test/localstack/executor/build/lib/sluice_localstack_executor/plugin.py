"""The plux entry point: `LAMBDA_RUNTIME_EXECUTOR=host` selects this plugin.

Kept free of heavy imports: LocalStack resolves every plugin of the namespace when it looks one up,
and only `load()` of the chosen one imports the executor.
"""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "host"

    def load(self, *args, **kwargs):
        from sluice_localstack_executor.executor import HostRuntimeExecutor

        return HostRuntimeExecutor
