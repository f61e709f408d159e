// Preloaded with --require (Node 20 refuses --cpu-prof in NODE_OPTIONS): profiles the process from
// start to exit and writes a .cpuprofile (Chrome DevTools / speedscope) into BENCH_CPU_PROF_DIR.
const inspector = require("node:inspector");
const fs = require("node:fs");
const path = require("node:path");
const session = new inspector.Session();
session.connect();
session.post("Profiler.enable");
session.post("Profiler.setSamplingInterval", { interval: 1000 });
session.post("Profiler.start");
process.on("exit", () => {
  // The in-process session answers synchronously, so this works inside an exit handler.
  session.post("Profiler.stop", (err, result) => {
    if (err) return;
    const file = path.join(process.env.BENCH_CPU_PROF_DIR, `endpoint-${process.pid}.cpuprofile`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(result.profile));
  });
});
