// The clan at a glance: its machines (with the age of each provider's newest
// backup, fetched per machine after the list shows) and its problems.
import { useEffect, useRef, useState } from "react";
import { get, post, enc } from "./api.js";
import { Field, ErrorBox, age } from "./ui.jsx";

// Listing backups reaches the machine (over SSH): only for cards on screen, a few
// at a time, so a clan of a thousand machines opens at once.
const queue = [];
let running = 0;
function schedule(task) {
  queue.push(task);
  const next = () => {
    while (running < 4 && queue.length > 0) {
      running++;
      queue.shift()().finally(() => {
        running--;
        next();
      });
    }
  };
  next();
}

function NewestBackups({ machine }) {
  const [state, setState] = useState(null);
  const [seen, setSeen] = useState(false);
  const ref = useRef(null);
  useEffect(() => {
    const o = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && setSeen(true));
    o.observe(ref.current);
    return () => o.disconnect();
  }, []);
  useEffect(() => {
    if (!seen) return;
    let live = true;
    schedule(() =>
      get(`/machines/${enc(machine)}/backups`)
        .then((d) => live && setState({ providers: d }))
        .catch((e) => live && setState({ error: e.message })),
    );
    return () => {
      live = false;
    };
  }, [machine, seen]);
  if (!state) return <p ref={ref} className="muted backups">Reading backups…</p>;
  if (state.error) return <p className="muted backups" title={state.error}>Backups unknown (machine unreachable?)</p>;
  if (state.providers.length === 0) return <p className="muted backups">No backup provider</p>;
  return (
    <ul className="backups">
      {state.providers.map((p) => {
        const newest = (p.backups ?? []).map((b) => b.time).sort().at(-1);
        return (
          <li key={p.provider}>
            {p.provider}: {p.error ? <span className="error">unreadable</span> : newest ? `${age(newest)} ago` : <span className="warning">no backup yet</span>}
          </li>
        );
      })}
    </ul>
  );
}

function NewMachine({ onDone }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!open) return <button onClick={() => setOpen(true)}>New machine</button>;
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    setBusy(true);
    try {
      await post("/machines", {
        name: f.get("name"),
        class: f.get("class"),
        targetHost: f.get("targetHost"),
        tags: f.get("tags").split(/[\s,]+/).filter(Boolean),
      });
      setOpen(false);
      setError(null);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card form" onSubmit={submit} aria-label="New machine">
      <h3>New machine</h3>
      <Field label="Name" hint="Letters, digits and '-', as in a host name">
        <input name="name" required pattern="[a-zA-Z0-9]([a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?" autoFocus />
      </Field>
      <Field label="Class">
        <select name="class" defaultValue="linux">
          <option value="linux">linux (any systemd Linux, e.g. Debian)</option>
          <option value="nixos">nixos</option>
          <option value="darwin">darwin</option>
        </select>
      </Field>
      <Field label="Target host" hint="[user@]host[:port]; empty: root@NAME.DOMAIN">
        <input name="targetHost" />
      </Field>
      <Field label="Tags" hint="Separated by spaces or commas">
        <input name="tags" />
      </Field>
      <ErrorBox error={error} />
      <div className="actions">
        <button type="submit" disabled={busy}>Create</button>
        <button type="button" className="secondary" onClick={() => setOpen(false)}>Cancel</button>
      </div>
    </form>
  );
}

/// Which machines answer over SSH: asked on demand (it reaches every machine).
function Reachability() {
  const [state, setState] = useState(null);
  const check = () => {
    setState({ busy: true });
    get("/reachability").then((found) => setState({ found }), (e) => setState({ error: e.message }));
  };
  const down = state?.found?.filter((r) => r.error) ?? [];
  return (
    <div className="reachability" aria-live="polite">
      <button type="button" className="secondary" onClick={check} disabled={state?.busy}>
        {state?.busy ? "Checking machines…" : "Check which machines answer"}
      </button>
      {state?.error && <pre className="error">{state.error}</pre>}
      {state?.found && down.length === 0 && (
        <p className="ok" data-testid="reachability">All {state.found.length} machines answered.</p>
      )}
      {down.map((r) => (
        <pre key={r.machine} className="error" data-testid="reachability">
          {`${r.machine} does not answer: ${r.error}`}
        </pre>
      ))}
    </div>
  );
}

/// What the whole clan's resolution finds wrong (read after the machines show).
function Problems({ clan }) {
  const [found, setFound] = useState(null);
  useEffect(() => {
    get("/problems").then(setFound, (e) => setFound([e.message]));
  }, [clan]);
  const all = [...clan.problems, ...(found ?? [])];
  return (
    <section className="problems" aria-label="Problems" aria-busy={found === null}>
      <h2>Problems</h2>
      {found === null && <p className="muted">Checking the clan…</p>}
      {found !== null && all.length === 0 && <p className="ok">None found: every machine resolves and its vars are in place.</p>}
      {all.map((p, i) => (
        <pre key={i} className="error">{p}</pre>
      ))}
      {clan.machines.length > 0 && <Reachability />}
    </section>
  );
}

export function Overview({ clan, reload }) {
  return (
    <main>
      <section className="intro">
        <h1>{clan.name ?? "clan"}</h1>
        {clan.description && <p>{clan.description}</p>}
        <p className="muted">
          Domain <code>{clan.domain}</code> · {clan.dir}
        </p>
      </section>
      <section aria-label="Machines">
        <div className="heading">
          <h2>Machines</h2>
          <NewMachine onDone={reload} />
        </div>
        <div className="grid">
          {clan.machines.map((m) => (
            <a key={m.name} className="card machine" href={`#/machines/${enc(m.name)}`} data-testid="machine-card">
              <h3>{m.name}</h3>
              <p>
                <span className="badge">{m.class}</span>{" "}
                {m.tags.filter((t) => t !== "all" && t !== m.class).map((t) => (
                  <span key={t} className="tag">{t}</span>
                ))}
              </p>
              <p className="muted">{m.targetHost ?? `root@${m.name}.${clan.domain}`}</p>
              <NewestBackups machine={m.name} />
            </a>
          ))}
        </div>
        {clan.machines.length === 0 && <p className="muted">No machines yet.</p>}
      </section>
      <Problems clan={clan} />
    </main>
  );
}
