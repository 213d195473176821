package sluice.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The benchmark's input lines, the same as the Sluice generator's (shared/local/embedded-runner.ts
 * defaultGenerate): the seq-th line is pool[mix(seq) & 65535], where the pool of 65,536 lines
 * (about 97 bytes each) is written to a file by bench/peers.ts from the TypeScript generator.
 */
public final class Lines {
  public static final String PATTERN = "with the";
  private static String[] pool;

  private Lines() {}

  /** Loads the pool once per JVM (executors in local mode share the driver's JVM). */
  public static synchronized void load(String file) throws IOException {
    if (pool != null) return;
    List<String> lines = Files.readAllLines(Path.of(file), StandardCharsets.UTF_8);
    if (lines.size() != 65_536)
      throw new IOException(file + ": expected 65536 lines, got " + lines.size());
    pool = lines.toArray(new String[0]);
  }

  /** Math.imul-based mixer of the TypeScript generator, bit for bit. */
  static int mix(long seed) {
    int x = ((int) (seed + 1)) * 0x9e3779b1;
    x = (x ^ (x >>> 15)) * 0x85ebca6b;
    x = (x ^ (x >>> 13)) * 0xc2b2ae35;
    return x ^ (x >>> 16);
  }

  public static String line(long seq) {
    return pool[mix(seq) & 0xffff];
  }

  public static String poolFile() {
    String f = System.getProperty("sluice.pool");
    if (f == null) throw new IllegalStateException("-Dsluice.pool=<file> is not set");
    return f;
  }

  /** The pool, loaded on first use from -Dsluice.pool (in executors too). */
  public static String lineOf(long seq) {
    if (pool == null) {
      try {
        load(poolFile());
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    }
    return line(seq);
  }
}
