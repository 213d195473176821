package sluice.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The sustainable-rate rule of bench/trial.ts, for a peer engine: after a warm-up, every one of
 * `measured` batches must have processing time < interval, scheduling delay < interval and no
 * backlog at the source. Warm-up: at least minWarmup batches, until a steady batch (the same
 * conditions); the trial fails early when it is hopeless (the same tests as trial.ts), or when no
 * steady batch came within maxWarmup batches.
 *
 * Fed one batch at a time by the engine's listener; prints each batch and the verdict as lines
 * starting with "@@ " (JSON) on stdout, which bench/peers.ts reads.
 */
public final class Judge {
  public final long intervalMs;
  public final long rate;
  public final int measuredBatches;
  public final int minWarmup;
  public final int maxWarmup;
  private final List<long[]> warmup = new ArrayList<>();
  private final List<long[]> measured = new ArrayList<>();
  private final List<Long> recent = new ArrayList<>();
  private boolean warm = true;
  private int index = 0;
  private String reason;
  private boolean done;
  private final long started = System.nanoTime();
  private long lastBatchNanos = System.nanoTime();

  public Judge(long intervalMs, long rate, int measuredBatches, int minWarmup, int maxWarmup) {
    this.intervalMs = intervalMs;
    this.rate = rate;
    this.measuredBatches = measuredBatches;
    this.minWarmup = minWarmup;
    this.maxWarmup = maxWarmup;
  }

  public synchronized boolean done() {
    return done;
  }

  /** Fails the trial when no batch completed for this long (a stalled engine). */
  public synchronized void checkStalled(long maxSilenceMs) {
    if (done) return;
    long silence = (System.nanoTime() - lastBatchNanos) / 1_000_000;
    if (silence > maxSilenceMs) fail("no batch completed for " + silence + " ms");
  }

  public synchronized void fail(String why) {
    if (reason == null) reason = why;
    done = true;
    notifyAll();
  }

  public synchronized void await() throws InterruptedException {
    while (!done) {
      wait(1000);
      checkStalled(Math.max(30_000, 5 * intervalMs));
    }
  }

  /** One completed batch. backlog: records due at the source but not yet produced. */
  public synchronized void batch(long batchTimeMs, long records, long processingMs, long schedulingDelayMs, long backlog) {
    if (done) return;
    lastBatchNanos = System.nanoTime();
    index++;
    long[] s = {batchTimeMs, records, processingMs, schedulingDelayMs, backlog};
    boolean wasWarm = warm;
    recent.add(processingMs);
    if (recent.size() > 3) recent.remove(0);
    double fullBatch = rate * intervalMs / 1000.0;
    // a peer's source may start after its first batches (a receiver): a steady batch is a full one
    boolean steady = backlog == 0 && processingMs < intervalMs && schedulingDelayMs < intervalMs
        && records >= 0.9 * fullBatch;
    if (warm) {
      warmup.add(s);
      double projected = records > 0 ? processingMs * fullBatch / records : 0;
      long[] sorted = recent.stream().mapToLong(Long::longValue).toArray();
      Arrays.sort(sorted);
      long recentMedian = sorted[sorted.length / 2];
      // the hopeless exits of trial.ts, from the end of the minimum warm-up on: a new
      // StreamingContext's (or Flink job's) first batches are slow for reasons of its own
      if (index > minWarmup && processingMs >= 2 * intervalMs + 200) {
        fail("warm-up batch " + index + " took " + processingMs + " ms: hopeless");
      } else if (index >= Math.max(4, minWarmup + 1) && recentMedian >= 1.5 * intervalMs) {
        fail("warm-up: 3 batches up to " + index + " took a median of " + recentMedian + " ms: hopeless");
      } else if (index > minWarmup && records >= fullBatch / 2 && projected >= 1.1 * intervalMs) {
        fail(String.format(Locale.ROOT, "warm-up batch %d took %d ms for %d records (~%d ms for a full batch)",
            index, processingMs, records, Math.round(projected)));
      } else if (index >= minWarmup && steady) {
        warm = false;
      } else if (index >= maxWarmup) {
        fail("no steady batch within " + maxWarmup + " warm-up batches (last: " + processingMs
            + " ms, scheduling delay " + schedulingDelayMs + " ms, backlog " + backlog + ")");
      }
    } else {
      measured.add(s);
      int n = measured.size();
      if (processingMs >= intervalMs) fail("batch " + n + " processing " + processingMs + " ms >= " + intervalMs + " ms");
      else if (schedulingDelayMs >= intervalMs)
        fail("batch " + n + " scheduling delay " + schedulingDelayMs + " ms >= " + intervalMs + " ms");
      else if (backlog > 0) fail("batch " + n + " left a backlog of " + backlog);
      else if (n >= measuredBatches) {
        done = true;
        notifyAll();
      }
    }
    System.out.println("@@ {\"batch\":" + index + ",\"warm\":" + wasWarm + ",\"measured\":" + measured.size()
        + ",\"records\":" + records + ",\"processingMs\":" + processingMs + ",\"schedulingDelayMs\":"
        + schedulingDelayMs + ",\"backlog\":" + backlog + "}");
    System.out.flush();
  }

  private static String samples(List<long[]> list) {
    StringBuilder b = new StringBuilder("[");
    for (int i = 0; i < list.size(); i++) {
      long[] s = list.get(i);
      if (i > 0) b.append(',');
      b.append("{\"batchTimeMs\":").append(s[0]).append(",\"records\":").append(s[1])
          .append(",\"processingMs\":").append(s[2]).append(",\"schedulingDelayMs\":").append(s[3])
          .append(",\"backlog\":").append(s[4]).append('}');
    }
    return b.append(']').toString();
  }

  private static String quote(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
  }

  /** Prints the verdict (called once after await()). */
  public synchronized void report() {
    if (reason == null && measured.size() < measuredBatches) reason = "only " + measured.size() + " batches ran";
    System.out.println("@@ {\"result\":true,\"rate\":" + rate + ",\"passed\":" + (reason == null)
        + (reason != null ? ",\"reason\":" + quote(reason) : "") + ",\"warmupBatches\":" + warmup.size()
        + ",\"elapsedMs\":" + (System.nanoTime() - started) / 1_000_000 + ",\"warmup\":" + samples(warmup)
        + ",\"measured\":" + samples(measured) + "}");
    System.out.flush();
  }
}
