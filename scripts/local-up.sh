#!/usr/bin/env bash
# Deploys the Sluice CDK app to LocalStack on this machine, the way it deploys to AWS, and prints
# where to send events and where the results land. No Docker needed: LocalStack's core runs on the
# host (test/localstack/start.sh installs it into .venv/localstack on first use), and its Lambda
# functions run as host processes through the runtime executor plugin in test/localstack/executor.
#
#   npm run local:up                                   # WordCount, 2 partitions, 1 s batches
#   npm run local:up -- -c pipeline=examples/grep.ts -c pipelineEnv='{"SLUICE_GREP_PATTERN":"timeout"}'
#   npm run local:up -- --wait                         # also wait for the scheduler's first batch
#   npm run local:down                                 # empty the bucket, destroy the stack, stop LocalStack
#
# Every argument except --wait goes to `cdklocal deploy` (later -c values override the defaults
# below). A LocalStack already listening on 127.0.0.1:4566 is reused, e.g. one started with
# `localstack start` on a machine with Docker (its Lambda functions then run in containers).
# Writes test/.tmp/local/<stack>.outputs.json, <stack>.env (the variables for the AWS clients) and
# <stack>.args (the deploy's arguments, which local-down.sh gives `cdklocal destroy`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/test/.tmp/local"
ENDPOINT="http://127.0.0.1:4566"
mkdir -p "$OUT"

say() { printf '[local] %s\n' "$*" >&2; }
now() { date +%s; }
since() { echo "$(($(now) - $1)) s"; }

wait_first_batch=0
deploy_args=()
for arg in "$@"; do
  if [[ "$arg" == "--wait" ]]; then wait_first_batch=1; else deploy_args+=("$arg"); fi
done

# The AWS clients of cdklocal, the CDK app, `sluice` and the tests all talk to LocalStack only.
# (cdklocal needs AWS_ENDPOINT_URL_S3 as well: its default host name does not resolve here.)
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
export AWS_ENDPOINT_URL="$ENDPOINT" AWS_ENDPOINT_URL_S3="$ENDPOINT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
# cdklocal and the helpers below run on this Node.js; on Node 20 the AWS SDK warns at every start that
# its releases after January 2027 need Node 22. Nothing to act on here: keep the output readable.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="${AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED:-true}"
# The functions run on the Node.js that runs this script.
SLUICE_NODE="${SLUICE_NODE:-$(command -v node)}"
export SLUICE_NODE

started_all=$(now)

# ---- 1. LocalStack --------------------------------------------------------------------------------
t=$(now)
bash test/localstack/start.sh
# A fault-injection file left by an interrupted end-to-end test would disturb this pipeline.
rm -f test/.tmp/host-executor-faults.json test/.tmp/host-executor-faults.json.*
say "LocalStack ready on $ENDPOINT ($(since "$t"))"

# ---- 2. CDK bootstrap (the staging bucket, roles and version parameter cdk deploy expects) ------
t=$(now)
npx cdklocal bootstrap aws://000000000000/us-east-1 --output "$OUT/cdk.out"
say "bootstrapped ($(since "$t"))"

# ---- 3. deploy ------------------------------------------------------------------------------------
# Small and throwaway by default: 2 partitions, 1 s batches, a bucket CloudFormation may delete
# (once emptied), no dashboard (LocalStack has no CloudWatch dashboards).
defaults=(-c partitions=2 -c batchIntervalMs=1000 -c removalPolicy=destroy -c dashboard=false -c metricsViaApi=true)
t=$(now)
rm -f "$OUT/deploy.outputs.json"
npx cdklocal deploy --require-approval never --output "$OUT/cdk.out" --outputs-file "$OUT/deploy.outputs.json" \
  "${defaults[@]}" ${deploy_args[@]+"${deploy_args[@]}"}
say "deployed ($(since "$t"))"

stack="$(node -e 'console.log(Object.keys(require(process.argv[1]))[0])' "$OUT/deploy.outputs.json")"
output() { node -e 'console.log(Object.values(require(process.argv[1]))[0][process.argv[2]] ?? "")' "$OUT/deploy.outputs.json" "$1"; }
bucket="$(output BucketName)"
queue="$(output QueueUrl)"
dlq="$(output DeadLetterQueueUrl)"
pipeline_name="$(output PipelineName)"
scheduler_fn="$(output SchedulerFunctionName)"
partition_fn="$(output PartitionFunctionName)"
recovery_fn="$(output RecoveryFunctionName)"
mv "$OUT/deploy.outputs.json" "$OUT/$stack.outputs.json"
printf '%s\n' "${defaults[@]}" ${deploy_args[@]+"${deploy_args[@]}"} >"$OUT/$stack.args"
echo "$stack" >"$OUT/last-stack"
cat >"$OUT/$stack.env" <<EOF
export AWS_ENDPOINT_URL=$ENDPOINT AWS_ENDPOINT_URL_S3=$ENDPOINT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export SLUICE_BUCKET=$bucket SLUICE_QUEUE_URL=$queue
EOF

# ---- 4. optionally, wait for the schedule to wake the scheduler (EventBridge, rate(1 minute)) -----
if ((wait_first_batch)); then
  t=$(now)
  say "waiting for the scheduler's first batch (the rule fires within a minute of the deploy)"
  node --no-warnings --input-type=module -e '
    import { S3Client, ListObjectsV2Command } from "@aws-sdk/client-s3";
    const s3 = new S3Client({ forcePathStyle: true });
    const deadline = Date.now() + 150_000;
    for (;;) {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: process.argv[1], Prefix: "manifests/", MaxKeys: 1 }));
      if (r.KeyCount) break;
      if (Date.now() > deadline) { console.error("no batch after 150 s"); process.exit(1); }
      await new Promise((r) => setTimeout(r, 1000));
    }' "$bucket"
  say "first batch committed ($(since "$t"))"
fi

cat <<EOF

Sluice pipeline '$pipeline_name' is deployed on LocalStack as stack $stack ($(since "$started_all")).
  events go to      $queue
  results land in   s3://$bucket/outputs/   (manifests/ holds one manifest per committed batch)
  dead letters      $dlq
  functions         $scheduler_fn (woken every minute)
                    $partition_fn
                    $recovery_fn
  function logs     test/.tmp/host-executor-logs/ (one file per execution environment)

Try it (first, in your shell: source test/.tmp/local/$stack.env):
  npx sluice send --queue $queue --generate 1000 --pipeline examples/wordcount.ts
  npx sluice status --bucket $bucket
  npx sluice status --bucket $bucket --batch <batch-time>   # one batch; it names the lineage commands
  .venv/localstack/bin/aws s3 ls s3://$bucket/outputs/ --recursive   # or any S3 client

The scheduler is woken by the EventBridge rule within a minute of the deploy, then runs one batch per
interval until its timeout and hands over to the next wake-up. Remove everything: npm run local:down
EOF
