// One machine: what it runs (instances, roles, final settings), its states, vars
// and prompts, its backups (back up now, restore), update and delete.
import { useCallback, useEffect, useState } from "react";
import { get, post, del, enc } from "./api.js";
import { Dialog, ErrorBox, Field, age } from "./ui.jsx";

/// The final settings, each with where it was set (a default when nowhere).
function Settings({ value, sources }) {
  const entries = Object.entries(value ?? {});
  if (entries.length === 0) return <span className="muted">none</span>;
  return (
    <dl className="settings">
      {entries.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>
            <code>{JSON.stringify(v)}</code>{" "}
            <small className="muted">{sources?.[k] ? sources[k].join("; ") : "default"}</small>
          </dd>
        </div>
      ))}
    </dl>
  );
}

/// What a restore of `states` replaces, stops and keeps, in words, before it runs.
function RestoreDialog({ machine, provider, backup, onCancel, onRestore }) {
  const [state, setState] = useState("");
  const states = machine.states.filter((s) => backup.states.includes(s.name) && (!state || s.name === state));
  const folders = states.flatMap((s) => s.folders);
  const units = [...new Set(states.flatMap((s) => s.services))];
  const dbs = states.flatMap((s) => s.postgresDatabases);
  return (
    <Dialog title={`Restore ${machine.name}`} onCancel={onCancel}>
        <p>
          From <strong>{provider}</strong> backup <code>{backup.name}</code> of {backup.time || "an unknown time"}
          {backup.time && ` (${age(backup.time)} ago)`}.
        </p>
        <Field label="What to restore">
          <select value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">Everything in this backup ({backup.states.join(", ")})</option>
            {backup.states.map((s) => (
              <option key={s} value={s}>
                Only {s}
              </option>
            ))}
          </select>
        </Field>
        <div className="warning-box" data-testid="restore-consequences">
          <p>This replaces, exactly as they were in the backup:</p>
          <ul>
            {folders.map((f) => (
              <li key={f}>
                <code>{f}</code> (files added since are removed)
              </li>
            ))}
            {dbs.map((d) => (
              <li key={d}>
                the PostgreSQL database <code>{d}</code>
              </li>
            ))}
          </ul>
          <p>
            {units.length > 0 ? (
              <>These services are stopped during the restore and started again: {units.map((u) => <code key={u}>{u} </code>)}</>
            ) : (
              "No service is stopped (the states name none)."
            )}
          </p>
          <p>A safety backup of the current data is taken first: the restore can be undone from it.</p>
        </div>
        <div className="actions">
          <button className="danger" onClick={() => onRestore(state || null)}>
            Restore
          </button>
          <button className="secondary" onClick={onCancel} autoFocus>
            Cancel
          </button>
        </div>
    </Dialog>
  );
}

function Backups({ machine, startJob }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [restoring, setRestoring] = useState(null);
  const load = useCallback(() => {
    setError(null);
    get(`/machines/${enc(machine.name)}/backups`).then(setList, setError);
  }, [machine.name]);
  useEffect(load, [load]);
  const titles = { restore: "Restore", backups: "Back up", drill: "Restore drill of" };
  const run = async (path, body) => {
    try {
      const { job } = await post(`/machines/${enc(machine.name)}/${path}`, body);
      startJob(job, `${titles[path]} ${machine.name}`, load);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-label="Backups">
      <div className="heading">
        <h2>Backups</h2>
        <div className="actions">
          <button onClick={() => run("backups", {})} disabled={machine.providers.length === 0}>
            Back up now
          </button>
          <button className="secondary" onClick={() => run("drill", {})} disabled={machine.providers.length === 0}>
            Run a restore drill
          </button>
        </div>
      </div>
      <ErrorBox error={error} />
      {list && <Health machine={machine.name} list={list} />}
      {!list && !error && <p className="muted">Reading backups…</p>}
      {list?.map((p) => (
        <div key={p.provider} className="provider">
          <h3>{p.provider}</h3>
          {p.error && <pre className="error">{p.error}</pre>}
          {p.backups?.length === 0 && <p className="muted">No backup yet.</p>}
          {p.backups?.length > 0 && (
            <table>
              <thead>
                <tr>
                  <th>Backup</th>
                  <th>Time</th>
                  <th>States</th>
                  <th>Why</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {[...p.backups].reverse().map((b) => (
                  <tr key={b.name}>
                    <td>
                      <code>{b.name}</code>
                    </td>
                    <td>{b.time ? `${age(b.time)} ago` : "?"}</td>
                    <td>{b.states.join(", ")}</td>
                    <td>{b.reason ?? ""}</td>
                    <td>
                      <button className="secondary" onClick={() => setRestoring({ provider: p.provider, backup: b })}>
                        Restore…
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      ))}
      {restoring && (
        <RestoreDialog
          machine={machine}
          {...restoring}
          onCancel={() => setRestoring(null)}
          onRestore={(state) => {
            setRestoring(null);
            run("restore", { provider: restoring.provider, backup: restoring.backup.name, state });
          }}
        />
      )}
    </section>
  );
}

/// Per provider and state: last backup, last drill, verdict (`clan backups status`),
/// read again whenever the backup list is.
function Health({ machine, list }) {
  const [lines, setLines] = useState(null);
  useEffect(() => {
    get(`/machines/${enc(machine)}/health`).then(setLines, () => setLines([]));
  }, [machine, list]);
  if (!lines || lines.length === 0) return null;
  return (
    <table className="health" data-testid="health">
      <thead>
        <tr>
          <th>Provider</th>
          <th>State</th>
          <th>Last backup</th>
          <th>Last drill</th>
          <th>Verdict</th>
        </tr>
      </thead>
      <tbody>
        {lines.map((l) => (
          <tr key={`${l.provider}/${l.state}`}>
            <td>{l.provider ?? "-"}</td>
            <td>{l.state ?? "-"}</td>
            <td>{l.lastBackup ? `${age(l.lastBackup)} ago` : "never"}</td>
            <td>{l.lastDrill ? `${l.lastDrillOk ? "ok" : "FAILED"}, ${age(l.lastDrill)} ago` : "never"}</td>
            <td className={l.verdict === "ok" ? "ok" : l.verdict === "failing" ? "error" : "warning"}>
              {l.verdict}
              {l.reasons.length > 0 && `: ${l.reasons.join("; ")}`}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/// Prompts of generators that have not run: answered here, then generated.
function Prompts({ machine, startJob }) {
  const missing = machine.prompts.filter((p) => p.missing);
  const [error, setError] = useState(null);
  if (missing.length === 0) return null;
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const answers = {};
    for (const p of missing) {
      const id = `${p.generator}/${p.prompt}`;
      const v = f.get(id) ?? "";
      if (p.type === "hidden" && v !== (f.get(`${id}#again`) ?? "")) {
        setError(new Error(`${id}: the two entries differ; type it again`));
        return;
      }
      answers[id] = v;
    }
    setError(null);
    try {
      const { job } = await post(`/machines/${enc(machine.name)}/vars`, { answers });
      startJob(job, `Generate the vars of ${machine.name}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-label="Prompts">
      <h2>Questions before the next update</h2>
      <form className="card form" onSubmit={submit}>
        {missing.map((p) => {
          const id = `${p.generator}/${p.prompt}`;
          const type = p.type === "hidden" ? "password" : "text";
          return (
            <div key={id}>
              <Field label={p.description ?? id} hint={id}>
                {p.type === "multiline" ? <textarea name={id} /> : <input name={id} type={type} autoComplete="off" />}
              </Field>
              {p.type === "hidden" && (
                <Field label="Again">
                  <input name={`${id}#again`} type="password" autoComplete="off" />
                </Field>
              )}
            </div>
          );
        })}
        <ErrorBox error={error} />
        <button type="submit">Generate</button>
      </form>
    </section>
  );
}

function Delete({ name }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const [error, setError] = useState(null);
  // The button stays while the dialog is open: focus returns to it on Escape.
  return (
    <>
      <button className="danger secondary" onClick={() => setOpen(true)}>
        Delete…
      </button>
      {open && (
    <Dialog title={`Delete ${name}`} onCancel={() => setOpen(false)}>
        <p>The machine leaves the inventory, its roles and its vars. Its data on the machine stays.</p>
        <Field label={`Type ${name} to delete it`}>
          <input value={typed} onChange={(e) => setTyped(e.target.value)} autoFocus />
        </Field>
        <ErrorBox error={error} />
        <div className="actions">
          <button
            className="danger"
            disabled={typed !== name}
            onClick={() =>
              del(`/machines/${enc(name)}`, { confirm: typed }).then(() => (location.hash = "#/"), setError)
            }
          >
            Delete
          </button>
          <button className="secondary" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
    </Dialog>
      )}
    </>
  );
}

export function MachinePage({ name, startJob }) {
  const [m, setM] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback(() => get(`/machines/${enc(name)}`).then(setM, setError), [name]);
  useEffect(() => {
    load();
  }, [load]);
  if (error) return <main><ErrorBox error={error} /></main>;
  if (!m) return <main><p className="muted">Resolving {name}…</p></main>;
  const update = async () => {
    try {
      const { job } = await post(`/machines/${enc(name)}/update`);
      startJob(job, `Update ${name}`, load);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <main>
      <section className="intro">
        <div className="heading">
          <h1>{m.name}</h1>
          <div className="actions">
            <button onClick={update}>Update machine</button>
            {m.undeletable ? (
              <button className="danger secondary" disabled title={m.undeletable}>
                Delete…
              </button>
            ) : (
              <Delete name={m.name} />
            )}
          </div>
        </div>
        <p>
          <span className="badge">{m.class}</span>{" "}
          {m.tags.filter((t) => t !== "all" && t !== m.class).map((t) => <span key={t} className="tag">{t}</span>)}
        </p>
        <p className="muted">Target: {m.deploy.targetHost ?? "root@" + m.name + " (default)"}</p>
        {m.undeletable && <p className="muted" data-testid="undeletable">{m.undeletable}</p>}
      </section>
      <Prompts machine={m} startJob={(j, t) => startJob(j, t, load)} />
      <section aria-label="Configuration">
        <h2>What it runs</h2>
        <table>
          <thead>
            <tr>
              <th>Instance</th>
              <th>Module</th>
              <th>Role</th>
              <th>Settings</th>
            </tr>
          </thead>
          <tbody>
            {m.instances.map((a) => (
              <tr key={a.instance + a.role}>
                <td>
                  <a href={`#/services/${enc(a.instance)}`}>{a.instance}</a>
                </td>
                <td>{a.module}</td>
                <td>{a.role}</td>
                <td>
                  <Settings value={a.settings} sources={a.sources} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-label="States">
        <h2>States (what its backups hold)</h2>
        {m.states.length === 0 && <p className="muted">No state.</p>}
        <ul className="states">
          {m.states.map((s) => (
            <li key={s.name}>
              <strong>{s.name}</strong>: {s.folders.map((f) => <code key={f}>{f} </code>)}
              {s.postgresDatabases.length > 0 && <> · databases {s.postgresDatabases.join(", ")}</>}
              {s.services.length > 0 && <> · services {s.services.join(", ")}</>}
            </li>
          ))}
        </ul>
      </section>
      <Backups machine={m} startJob={startJob} />
      <section aria-label="Vars">
        <h2>Vars</h2>
        <table>
          <tbody>
            {m.vars.map((v) => (
              <tr key={v.id}>
                <td>
                  <code>{v.id}</code>
                </td>
                <td>{v.secret ? "secret" : (v.value ?? "")}</td>
                <td className={v.set ? "ok" : "warning"}>{v.set ? "set" : "missing"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </main>
  );
}
