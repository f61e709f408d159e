// Preloaded by the benchmark (NODE_OPTIONS=--require) to report a process's peak RSS in KiB.
const fs = require("node:fs");
process.on("exit", () => {
  if (process.env.BENCH_RSS_FILE)
    fs.writeFileSync(process.env.BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
});
