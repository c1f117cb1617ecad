// Service instances: add one of a module, assign machines and tags to its roles,
// and edit settings role-wide, per tag and per machine in forms generated from the
// role's JSON Schema. The UI writes inventory.json; layers from clan.nix are shown
// read-only with where they come from.
import { useCallback, useEffect, useState } from "react";
import { get, post, put, enc } from "./api.js";
import { ErrorBox, Field } from "./ui.jsx";
import { SettingsForm } from "./forms.jsx";

export function ServicesPage({ clan }) {
  const [instances, setInstances] = useState(null);
  const [modules, setModules] = useState([]);
  const [error, setError] = useState(null);
  const load = useCallback(() => {
    get("/instances").then(setInstances, setError);
    get("/modules").then(setModules, setError);
  }, []);
  useEffect(load, [load]);
  const add = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await post("/instances", { instance: f.get("instance"), module: f.get("module") });
      location.hash = `#/services/${enc(f.get("instance"))}`;
    } catch (err) {
      setError(err);
    }
  };
  return (
    <main>
      <h1>Services</h1>
      <ErrorBox error={error} />
      {!instances && <p className="muted">Reading the inventory…</p>}
      <div className="grid">
        {instances?.map((i) => (
          <a key={i.name} className="card" href={`#/services/${enc(i.name)}`} data-testid="instance-card">
            <h3>{i.name}</h3>
            <p className="muted">module {i.module}</p>
            <ul>
              {Object.entries(i.roles).map(([r, role]) => (
                <li key={r}>
                  {r}: {[...role.machines, ...role.tags.map((t) => `tag ${t}`)].join(", ") || "nobody"}
                </li>
              ))}
            </ul>
          </a>
        ))}
      </div>
      <form className="card form" onSubmit={add} aria-label="Add a service">
        <h2>Add a service</h2>
        <Field label="Module">
          <select name="module" required>
            {modules.map((m) => (
              <option key={m.name} value={m.name}>
                {m.name}
                {m.builtin ? "" : " (this clan's)"} — {m.description}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Instance name" hint="Letters, digits, '-' and '_'">
          <input name="instance" required pattern="[a-zA-Z0-9_\-]+" />
        </Field>
        <button type="submit">Add</button>
      </form>
      {clan.machines.length === 0 && <p className="muted">Create machines first to give them roles.</p>}
    </main>
  );
}

/// The machines and tags of one role.
function Members({ instance, role, value, clan, onSaved }) {
  const [machines, setMachines] = useState(value.machines);
  const [tags, setTags] = useState(value.tags.join(" "));
  const [error, setError] = useState(null);
  const save = async (e) => {
    e.preventDefault();
    try {
      await put(`/instances/${enc(instance)}/roles/${enc(role)}/members`, {
        machines,
        tags: tags.split(/[\s,]+/).filter(Boolean),
      });
      setError(null);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form className="members" onSubmit={save} aria-label={`Members of ${role}`}>
      <fieldset>
        <legend>Machines</legend>
        {clan.machines.map((m) => (
          <label key={m.name} className="check">
            <input
              type="checkbox"
              checked={machines.includes(m.name)}
              onChange={(e) =>
                setMachines(e.target.checked ? [...machines, m.name] : machines.filter((x) => x !== m.name))
              }
            />
            {m.name}
          </label>
        ))}
      </fieldset>
      <Field label="Tags" hint="Every machine with one of these tags takes the role">
        <input value={tags} onChange={(e) => setTags(e.target.value)} />
      </Field>
      <ErrorBox error={error} />
      <button type="submit">Save members</button>
    </form>
  );
}

/// One layer of settings: a form when inventory.json holds (or may hold) it.
function Layer({ instance, role, schema, layer, onSaved }) {
  const [issues, setIssues] = useState([]);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  const title =
    layer.layer === "role" ? "Every machine of the role" : layer.layer === "tag" ? `Machines tagged ${layer.of}` : `Machine ${layer.of}`;
  if (!layer.editable) {
    return (
      <div className="layer readonly">
        <h4>{title}</h4>
        <p className="muted">Set in {layer.source} (edit it there)</p>
        <pre>{JSON.stringify(layer.settings, null, 2)}</pre>
      </div>
    );
  }
  const save = async (settings) => {
    try {
      const r = await put(`/instances/${enc(instance)}/roles/${enc(role)}/settings`, {
        layer: layer.layer,
        of: layer.of,
        settings,
      });
      setIssues([]);
      setError(null);
      setSaved(r.committed ? `Saved and committed: ${r.message}` : "Saved");
      onSaved();
    } catch (err) {
      setIssues(err.issues);
      setError(err);
      setSaved(null);
    }
  };
  return (
    <div className="layer" data-testid={`layer-${layer.layer}${layer.of ? "-" + layer.of : ""}`}>
      <h4>{title}</h4>
      <SettingsForm
        idPrefix={`${instance}-${role}-${layer.layer}-${layer.of ?? ""}`}
        schema={schema}
        value={layer.settings}
        issues={issues}
        onSave={save}
      />
      <ErrorBox error={error} />
      {saved && <p className="ok" role="status">{saved}</p>}
    </div>
  );
}

export function InstancePage({ name, clan }) {
  const [instance, setInstance] = useState(null);
  const [module, setModule] = useState(null);
  const [error, setError] = useState(null);
  const [extra, setExtra] = useState({});
  const load = useCallback(async () => {
    try {
      const [all, modules] = await Promise.all([get("/instances"), get("/modules")]);
      const i = all.find((x) => x.name === name);
      if (!i) throw new Error(`No instance ${name} in the inventory`);
      setInstance(i);
      setModule(modules.find((m) => m.name === i.module));
    } catch (e) {
      setError(e);
    }
  }, [name]);
  useEffect(() => {
    load();
  }, [load]);
  if (error) return <main><ErrorBox error={error} /></main>;
  if (!instance || !module) return <main><p className="muted">Reading {name}…</p></main>;
  return (
    <main>
      <h1>{name}</h1>
      <p className="muted">
        Module {module.name} — {module.description}
      </p>
      {Object.entries(module.roles).map(([r, info]) => {
        const role = instance.roles[r] ?? { machines: [], tags: [], layers: [] };
        const layers = [...role.layers];
        // Every layer shown may be written in inventory.json, even where clan.nix
        // has one too (shown read-only beside it).
        const editable = (kind, of) => layers.some((l) => l.editable && l.layer === kind && l.of === of);
        if (!editable("role", null)) layers.unshift({ layer: "role", of: null, settings: {}, editable: true });
        for (const [k, of] of Object.entries(extra[r] ?? {})) {
          const [kind] = k.split(":");
          if (!editable(kind, of)) layers.push({ layer: kind, of, settings: {}, editable: true });
        }
        return (
          <section key={r} aria-label={`Role ${r}`} className="role">
            <h2>Role {r}</h2>
            <p className="muted">{info.description}</p>
            <Members instance={name} role={r} value={role} clan={clan} onSaved={load} />
            <h3>Settings</h3>
            {layers.map((l) => (
              <Layer key={`${l.layer}:${l.of}:${l.editable ? "inventory.json" : l.source}`} instance={name} role={r} schema={info.schema} layer={l} onSaved={load} />
            ))}
            <Field label="Settings for one machine or tag">
              <select
                value=""
                onChange={(e) => {
                  const [kind, of] = e.target.value.split(":");
                  setExtra({ ...extra, [r]: { ...(extra[r] ?? {}), [`${kind}:${of}`]: of } });
                }}
              >
                <option value="">Add…</option>
                {clan.machines.map((m) => (
                  <option key={m.name} value={`machine:${m.name}`}>
                    machine {m.name}
                  </option>
                ))}
                {[...new Set(clan.machines.flatMap((m) => m.tags))].map((t) => (
                  <option key={t} value={`tag:${t}`}>
                    tag {t}
                  </option>
                ))}
              </select>
            </Field>
          </section>
        );
      })}
    </main>
  );
}
