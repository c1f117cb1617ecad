// A long operation's live progress (its events, as the CLI renders them) and its
// end: the same summary the CLI prints.
import { useEffect, useRef, useState } from "react";
import { followJob } from "./api.js";
import { Dialog } from "./ui.jsx";

/// One event as a line of text (Step, Output, Warning), or a progress value.
function describe(e) {
  const inner = e.event === "machine" ? e.of : e;
  const prefix = inner.provider ? `${inner.provider}: ` : "";
  switch (inner.event) {
    case "step":
      return { line: `${prefix}${inner.step}` };
    case "output":
      return { line: `${prefix}${inner.line ?? ""}` };
    case "warning":
      return { line: `warning: ${inner.message}`, warning: true };
    case "progress":
      return { progress: inner };
    case "machineDone":
      return { line: `${e.machine}: ${e.summary}` };
    default:
      return {};
  }
}

/// The end of a job in words.
export function summary(job) {
  if (job.status === "failed") return job.error ?? "failed";
  const r = job.result;
  if (Array.isArray(r) && r.length > 0 && "ok" in r[0] && "state" in r[0]) {
    return r.map((d) => `${d.provider}: state '${d.state}': ok, ${d.files} files checked`).join("\n");
  }
  if (Array.isArray(r)) {
    return r
      .map((p) => (p.error ? `${p.provider}: failed: ${p.error}` : `${p.provider}: ${p.result?.backup?.name ?? p.result?.name ?? "done"}`))
      .join("\n");
  }
  if (r && r.states) {
    return `Restored ${r.states.join(", ")}${(r.safetyBackup ?? r.safety_backup) ? ` (safety backup ${r.safetyBackup ?? r.safety_backup})` : ""}`;
  }
  if (r && r.machines) return r.machines.map(([m, o]) => `${m}: ${o.result}`).join("\n");
  if (r && r.ran) return `Generated: ${r.ran.map(([m, g]) => `${m}/${g}`).join(", ") || "nothing missing"}`;
  return "Done";
}

export function JobDialog({ job, onClose }) {
  const [lines, setLines] = useState([]);
  const [progress, setProgress] = useState(null);
  const [end, setEnd] = useState(null);
  const close = useRef(null);
  useEffect(() => {
    if (end) close.current.focus();
  }, [end]);
  useEffect(
    () =>
      followJob(
        job.id,
        (e) => {
          const d = describe(e);
          if (d.line) setLines((l) => [...l.slice(-200), d]);
          if (d.progress) setProgress(d.progress);
        },
        setEnd,
      ),
    [job.id],
  );
  const percent = progress?.total ? Math.min(100, Math.round((progress.done * 100) / progress.total)) : null;
  return (
    <Dialog title={job.title} onCancel={end ? () => onClose(end) : null}>
        <div className="progress" aria-live="polite">
          {end ? (
            <p className={end.status === "done" ? "ok" : "error"} data-testid="job-end">
              {end.status === "done" ? "✓ " : "✗ "}
              {summary(end)}
            </p>
          ) : (
            <p>
              <span className="spinner" aria-hidden="true" /> Running…{percent !== null && ` ${percent}%`}
            </p>
          )}
          {percent !== null && !end && <progress max="100" value={percent} />}
        </div>
        <pre className="log" data-testid="job-log">
          {lines.map((l, i) => (
            <div key={i} className={l.warning ? "warning" : ""}>
              {l.line}
            </div>
          ))}
        </pre>
        <div className="actions">
          <button ref={close} onClick={() => onClose(end)} disabled={!end}>
            Close
          </button>
        </div>
    </Dialog>
  );
}
