// Forms generated from a role's JSON Schema (react-jsonschema-form, validated as you
// type by ajv with the same schema the server checks), for one layer of settings:
// what a layer leaves out comes from other layers or the defaults, so nothing is
// required here and defaults are placeholders, not values written.
import Form from "@rjsf/core";
import { customizeValidator } from "@rjsf/validator-ajv8";
import Ajv2020 from "ajv/dist/2020.js";

export const validator = customizeValidator({
  AjvClass: Ajv2020,
  ajvOptionsOverrides: { strict: false, allErrors: true },
});

/// The schema of a layer: `required` lists become marks in titles, defaults move to
/// the UI schema as placeholders; `x-ui` (SelfPrivacy's meta) orders and picks widgets.
export function layerForm(schema) {
  const ui = {};
  const strip = (s, uiAt) => {
    if (!s || typeof s !== "object") return s;
    // "X or null": an empty field is null (the layer leaves it out), so just X.
    for (const k of ["anyOf", "oneOf"]) {
      const alts = s[k];
      if (Array.isArray(alts) && alts.length === 2 && alts.some((a) => a.type === "null")) {
        const { [k]: _, ...rest } = s;
        return strip({ ...alts.find((a) => a.type !== "null"), ...rest }, uiAt);
      }
    }
    const out = { ...s };
    delete out.$schema;
    const required = new Set(out.required ?? []);
    delete out.required;
    if ("default" in out) {
      if (typeof out.default !== "object") uiAt["ui:placeholder"] = String(out.default);
      uiAt["ui:help"] = `Default: ${JSON.stringify(out.default)}`;
      delete out.default;
    }
    const meta = out["x-ui"];
    if (meta) {
      const widget = meta.widget ?? meta.type;
      if (widget === "enable" || widget === "switch") uiAt["ui:widget"] = "checkbox";
      if (widget === "subdomain") uiAt["ui:help"] = "A subdomain of the clan's domain, e.g. cloud";
      if (widget === "location") uiAt["ui:help"] = "A folder on the machine, e.g. /var/lib/app";
    }
    if (out.properties) {
      const props = {};
      const order = Object.keys(out.properties).sort(
        (a, b) => (out.properties[a]["x-ui"]?.weight ?? 50) - (out.properties[b]["x-ui"]?.weight ?? 50),
      );
      for (const k of order) {
        uiAt[k] = uiAt[k] ?? {};
        props[k] = strip(out.properties[k], uiAt[k]);
        if (required.has(k)) props[k].title = `${props[k].title ?? k} *`;
      }
      out.properties = props;
      uiAt["ui:order"] = [...order, "*"];
    }
    if (out.additionalProperties && typeof out.additionalProperties === "object") {
      uiAt.additionalProperties = {};
      out.additionalProperties = strip(out.additionalProperties, uiAt.additionalProperties);
    }
    if (out.items && typeof out.items === "object") {
      uiAt.items = {};
      out.items = strip(out.items, uiAt.items);
    }
    for (const k of ["anyOf", "oneOf"]) {
      if (Array.isArray(out[k])) out[k] = out[k].map((x) => strip(x, {}));
    }
    return out;
  };
  const layer = strip(schema, ui);
  return { schema: layer, uiSchema: ui };
}

/// The server's issues (`path` dotted, as the CLI prints it) as rjsf's errors.
export function issuesAsErrors(issues) {
  const errors = {};
  for (const issue of issues ?? []) {
    const path = !issue.path || issue.path === "(top level)" ? [] : issue.path.split(".");
    let at = errors;
    for (const p of path) at = at[p] = at[p] ?? {};
    (at.__errors = at.__errors ?? []).push(issue.message);
  }
  return errors;
}

export function SettingsForm({ schema, value, onSave, issues, disabled, idPrefix }) {
  const { schema: s, uiSchema } = layerForm(schema);
  return (
    <Form
      idPrefix={idPrefix}
      schema={s}
      uiSchema={{ ...uiSchema, "ui:submitButtonOptions": { submitText: "Save" } }}
      formData={value ?? {}}
      validator={validator}
      liveValidate
      showErrorList={false}
      extraErrors={issuesAsErrors(issues)}
      disabled={disabled}
      onSubmit={({ formData }) => onSave(formData)}
    />
  );
}
