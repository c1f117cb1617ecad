// Small pieces every page uses.
import { useId } from "react";

/// A labelled input: the label names it for screen readers and clicks.
export function Field({ label, hint, children }) {
  const id = useId();
  const child = { ...children, props: { ...children.props, id, "aria-describedby": hint ? `${id}-hint` : undefined } };
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {child}
      {hint && (
        <small id={`${id}-hint`} className="muted">
          {hint}
        </small>
      )}
    </div>
  );
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return (
    <pre className="error" role="alert">
      {error.message ?? String(error)}
    </pre>
  );
}

/// "3 h", "2 d": how long ago an RFC 3339 time was.
export function age(time) {
  const s = Math.max(0, (Date.now() - Date.parse(time)) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 129600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
