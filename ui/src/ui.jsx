// Small pieces every page uses.
import { useEffect, useId, useRef, useState } from "react";

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

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

/// A modal dialog for keyboards too: Escape cancels (when `onCancel` is given), Tab
/// stays inside, and focus returns to where it was when the dialog closes.
export function Dialog({ title, onCancel, children }) {
  const titleId = useId();
  const ref = useRef(null);
  // Read while rendering: by the effect, an autoFocus inside has taken the focus.
  const [before] = useState(() => document.activeElement);
  useEffect(() => {
    if (!ref.current.contains(document.activeElement)) (ref.current.querySelector(FOCUSABLE) ?? ref.current).focus();
    return () => before?.focus?.();
  }, []);
  const onKeyDown = (e) => {
    if (e.key === "Escape" && onCancel) {
      e.stopPropagation();
      onCancel();
    } else if (e.key === "Tab") {
      const all = [...ref.current.querySelectorAll(FOCUSABLE)];
      if (all.length === 0) return;
      const [first, last] = [all[0], all.at(-1)];
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    }
  };
  return (
    <div className="overlay" role="dialog" aria-modal="true" aria-labelledby={titleId} onKeyDown={onKeyDown}>
      <div className="dialog" ref={ref} tabIndex={-1}>
        <h2 id={titleId}>{title}</h2>
        {children}
      </div>
    </div>
  );
}
