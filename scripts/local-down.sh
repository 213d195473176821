#!/usr/bin/env bash
# Removes what scripts/local-up.sh deployed: empties the pipeline's bucket, destroys the stack with
# `cdklocal destroy` (the bucket is deleted with it: local-up deploys with -c removalPolicy=destroy),
# and stops the LocalStack that test/localstack/start.sh started.
#
#   npm run local:down                          # the stack local-up deployed last
#   npm run local:down -- SluiceGrep            # another one
#   npm run local:down -- --keep-localstack     # leave LocalStack running
#
# A running scheduler keeps writing to the bucket until CloudFormation deletes its function, which
# it does before it deletes the bucket (the function refers to it). So the first `destroy` may find
# the bucket non-empty again and stop with DELETE_FAILED, as on AWS: the bucket is then emptied once
# more, now that nothing writes to it, and the stack destroyed again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/test/.tmp/local"
ENDPOINT="http://127.0.0.1:4566"

say() { printf '[local] %s\n' "$*" >&2; }
now() { date +%s; }
since() { echo "$(($(now) - $1)) s"; }

keep_localstack=0
stack=""
for arg in "$@"; do
  case "$arg" in
    --keep-localstack) keep_localstack=1 ;;
    -*) say "unknown option $arg"; exit 2 ;;
    *) stack="$arg" ;;
  esac
done
if [[ -z "$stack" && -f "$OUT/last-stack" ]]; then stack="$(cat "$OUT/last-stack")"; fi

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
export AWS_ENDPOINT_URL="$ENDPOINT" AWS_ENDPOINT_URL_S3="$ENDPOINT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
# cdklocal and the helpers below run on this Node.js; on Node 20 the AWS SDK warns at every start that
# its releases after January 2027 need Node 22. Nothing to act on here: keep the output readable.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="${AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED:-true}"

# Deletes every object of the bucket; prints how many. A missing bucket is already empty.
empty_bucket() {
  node --no-warnings --input-type=module -e '
    import { S3Client, ListObjectsV2Command, DeleteObjectsCommand } from "@aws-sdk/client-s3";
    const s3 = new S3Client({ forcePathStyle: true });
    const Bucket = process.argv[1];
    let deleted = 0;
    try {
      for (;;) {
        const page = await s3.send(new ListObjectsV2Command({ Bucket }));
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
        if (keys.length === 0) break;
        await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
        deleted += keys.length;
      }
    } catch (e) {
      if (e.name !== "NoSuchBucket") throw e;
    }
    console.log(deleted);' "$1"
}

started_all=$(now)
if ! curl -fsS --max-time 2 "$ENDPOINT/_localstack/health" >/dev/null 2>&1; then
  # LocalStack keeps its resources in memory: with it gone, so are the stacks local-up deployed.
  say "LocalStack is not running on $ENDPOINT: nothing to destroy"
  rm -f "$OUT"/*.outputs.json "$OUT"/*.args "$OUT"/*.env "$OUT/last-stack"
elif [[ -z "$stack" || ! -f "$OUT/$stack.outputs.json" ]]; then
  say "no stack deployed by local-up.sh${stack:+ under the name $stack} (test/.tmp/local/); nothing to destroy"
else
  bucket="$(node -e 'console.log(Object.values(require(process.argv[1]))[0].BucketName)' "$OUT/$stack.outputs.json")"
  args=()
  if [[ -f "$OUT/$stack.args" ]]; then mapfile -t args <"$OUT/$stack.args"; fi
  destroy() {
    npx cdklocal destroy --force --output "$OUT/cdk.out" ${args[@]+"${args[@]}"} "$stack"
  }
  t=$(now)
  say "emptied s3://$bucket ($(empty_bucket "$bucket") objects)"
  if ! destroy; then
    say "destroy stopped at the bucket, which the scheduler wrote to until its function was deleted;" \
      "emptying it again ($(empty_bucket "$bucket") objects) and destroying the rest"
    destroy
  fi
  rm -f "$OUT/$stack.outputs.json" "$OUT/$stack.args" "$OUT/$stack.env"
  if [[ -f "$OUT/last-stack" && "$(cat "$OUT/last-stack")" == "$stack" ]]; then rm -f "$OUT/last-stack"; fi
  say "stack $stack destroyed ($(since "$t"))"
fi

if ((keep_localstack)); then
  say "LocalStack left running (--keep-localstack)"
else
  bash test/localstack/stop.sh
fi
say "done ($(since "$started_all"))"
