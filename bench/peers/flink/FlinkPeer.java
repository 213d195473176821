package sluice.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.ReduceFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessAllWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

/**
 * The Flink peer of `npm run bench`: WordCount and Grep as Flink DataStream jobs (local
 * MiniCluster, parallelism p), on the same lines as the Sluice generator, judged by the same rule.
 *
 *   java ... sluice.bench.FlinkPeer <wordcount|grep> <intervalMs> <parallelism> <workDir>
 *
 * then one trial per stdin line "trial <rate> <measuredBatches> <minWarmup> <maxWarmup>".
 *
 * Flink has no batches: a batch here is a tumbling event-time window of the interval, where a
 * line's event time is its scheduled time at the fixed rate (so a source that falls behind shows
 * as late windows). A window's "processing time" is the wall clock when all its results have
 * reached the final (parallelism 1) operator minus the window's end; it must stay under the
 * interval for every measured window, like a Sluice batch. Watermarks every interval/10.
 *
 *   WordCount  lines > flatMap(split ' ', (w, 1)) > keyBy(w) > window > reduce(+) > windowAll > sum
 *   Grep       lines > filter(contains PATTERN) > windowAll > count
 */
public final class FlinkPeer {
  /** Shared by the job's operators (local MiniCluster: one JVM, one class loader). */
  static volatile Judge judge;
  static final Map<Long, Long> LINES = new ConcurrentHashMap<>();
  static final Map<Integer, Long> LAG_MS = new ConcurrentHashMap<>();

  /**
   * The generator: the index-th line, stamped with its scheduled time at the reader's rate
   * (rate / parallelism); it paces itself, sleeping when it is ahead of the schedule.
   */
  static final class Gen implements GeneratorFunction<Long, Tuple2<Long, String>> {
    private final long rate;
    private final long interval;
    private transient int subtask;
    private transient double perReader;
    private transient long base;
    private transient long t0;
    private transient long window;
    private transient long count;

    Gen(long rate, long interval) {
      this.rate = rate;
      this.interval = interval;
    }

    @Override
    public void open(SourceReaderContext ctx) {
      subtask = ctx.getIndexOfSubtask();
      perReader = (double) rate / ctx.currentParallelism();
      base = -1;
    }

    @Override
    public Tuple2<Long, String> map(Long index) {
      long now = System.currentTimeMillis();
      if (base < 0) {
        base = index;
        t0 = now;
        window = t0 - t0 % interval;
      }
      long scheduled = t0 + (long) ((index - base) * 1000.0 / perReader);
      if (scheduled > now + 1) {
        // ahead of the schedule: wait (Flink's RateLimiterStrategy costs an async hop per record,
        // which caps a reader far below these rates)
        try {
          Thread.sleep(scheduled - now);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        now = System.currentTimeMillis();
      }
      long w = scheduled - scheduled % interval;
      if (w != window) {
        LINES.merge(window, count, Long::sum);
        LAG_MS.put(subtask, now - scheduled);
        window = w;
        count = 0;
      }
      count++;
      return Tuple2.of(scheduled, Lines.lineOf(index));
    }
  }

  /** The final operator: one value per window; reports the window to the judge. */
  static final class Report extends ProcessAllWindowFunction<Long, Long, TimeWindow> {
    private final long rate;

    Report(long rate) {
      this.rate = rate;
    }

    @Override
    public void process(Context ctx, Iterable<Long> values, Collector<Long> out) {
      long sum = 0;
      for (long v : values) sum += v;
      TimeWindow w = ctx.window();
      long now = System.currentTimeMillis();
      long lag = 0;
      for (long l : LAG_MS.values()) lag = Math.max(lag, l);
      Long lines = LINES.remove(w.getStart());
      Judge j = judge;
      if (j != null) {
        long backlog = lag > j.intervalMs / 10 ? lag * rate / 1000 : 0;
        j.batch(w.getEnd(), lines == null ? 0 : lines, now - w.getEnd(), 0, backlog);
      }
      out.collect(sum);
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: FlinkPeer <wordcount|grep> <intervalMs> <parallelism> <workDir>");
      System.exit(2);
    }
    String job = args[0];
    long interval = Long.parseLong(args[1]);
    int parallelism = Integer.parseInt(args[2]);
    Lines.load(Lines.poolFile());
    System.out.println("@@ {\"ready\":true,\"version\":\"Flink " + org.apache.flink.runtime.util.EnvironmentInformation.getVersion() + "\"}");
    System.out.flush();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    String command;
    while ((command = in.readLine()) != null) {
      String[] c = command.trim().split("\\s+");
      if (c[0].equals("quit")) break;
      if (!c[0].equals("trial")) continue;
      long rate = Long.parseLong(c[1]);
      Judge j = new Judge(interval, rate, Integer.parseInt(c[2]), Integer.parseInt(c[3]), Integer.parseInt(c[4]));
      LINES.clear();
      LAG_MS.clear();
      judge = j;
      Configuration conf = new Configuration();
      conf.set(PipelineOptions.AUTO_WATERMARK_INTERVAL, Duration.ofMillis(Math.max(10, interval / 10)));
      conf.set(PipelineOptions.OBJECT_REUSE, true);
      StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
      DataGeneratorSource<Tuple2<Long, String>> source = new DataGeneratorSource<>(
          new Gen(rate, interval), Long.MAX_VALUE, RateLimiterStrategy.noOp(),
          Types.TUPLE(Types.LONG, Types.STRING));
      DataStream<Tuple2<Long, String>> lines = env.fromSource(source,
          WatermarkStrategy.<Tuple2<Long, String>>forMonotonousTimestamps().withTimestampAssigner((e, ts) -> e.f0),
          "lines");
      TumblingEventTimeWindows windows = TumblingEventTimeWindows.of(Duration.ofMillis(interval));
      DataStream<Long> perWindow;
      if (job.equals("wordcount")) {
        perWindow = lines
            .flatMap(new FlatMapFunction<Tuple2<Long, String>, Tuple2<String, Long>>() {
              @Override
              public void flatMap(Tuple2<Long, String> line, Collector<Tuple2<String, Long>> out) {
                for (String w : line.f1.split(" ")) out.collect(Tuple2.of(w, 1L));
              }
            })
            .keyBy(new KeySelector<Tuple2<String, Long>, String>() {
              @Override
              public String getKey(Tuple2<String, Long> t) {
                return t.f0;
              }
            })
            .window(windows)
            .reduce(new ReduceFunction<Tuple2<String, Long>>() {
              @Override
              public Tuple2<String, Long> reduce(Tuple2<String, Long> a, Tuple2<String, Long> b) {
                return Tuple2.of(a.f0, a.f1 + b.f1);
              }
            })
            .map(t -> t.f1)
            .returns(Types.LONG);
      } else {
        perWindow = lines
            .filter(new FilterFunction<Tuple2<Long, String>>() {
              @Override
              public boolean filter(Tuple2<Long, String> t) {
                return t.f1.contains(Lines.PATTERN);
              }
            })
            .map(t -> 1L)
            .returns(Types.LONG);
      }
      perWindow.windowAll(windows).process(new Report(rate)).returns(Types.LONG).sinkTo(new DiscardingSink<>());
      JobClient client = env.executeAsync("sluice-peer-flink-" + job);
      j.await();
      judge = null;
      try {
        client.cancel().get(60, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("cancel: " + e);
      }
      j.report();
    }
    System.exit(0);
  }
}
