// clan ui: pages by the address's hash (#/, #/machines/NAME, #/services, #/services/NAME).
import { createRoot } from "react-dom/client";
import { useCallback, useEffect, useState } from "react";
import { get } from "./api.js";
import { ErrorBox } from "./ui.jsx";
import { Overview } from "./overview.jsx";
import { MachinePage } from "./machine.jsx";
import { ServicesPage, InstancePage } from "./services.jsx";
import { JobDialog } from "./job.jsx";

function useHash() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function App() {
  const hash = useHash();
  const [clan, setClan] = useState(null);
  const [error, setError] = useState(null);
  const [job, setJob] = useState(null);
  const reload = useCallback(() => get("/clan").then(setClan, setError), []);
  useEffect(() => {
    reload();
  }, [reload, hash]);
  const startJob = (id, title, then) => setJob({ id, title, then });
  const parts = hash.slice(2).split("/").map(decodeURIComponent);
  let page;
  if (!clan) page = <main><ErrorBox error={error} />{!error && <p className="muted">Reading the clan…</p>}</main>;
  else if (parts[0] === "machines" && parts[1]) page = <MachinePage key={parts[1]} name={parts[1]} startJob={startJob} />;
  else if (parts[0] === "services" && parts[1]) page = <InstancePage key={parts[1]} name={parts[1]} clan={clan} />;
  else if (parts[0] === "services") page = <ServicesPage clan={clan} />;
  else page = <Overview clan={clan} reload={reload} />;
  const current = parts[0] === "services" ? "services" : "overview";
  return (
    <>
      <header>
        <a className="brand" href="#/">
          {clan?.name ?? "clan"}
        </a>
        <nav aria-label="Main">
          <a href="#/" aria-current={current === "overview" ? "page" : undefined}>
            Machines
          </a>
          <a href="#/services" aria-current={current === "services" ? "page" : undefined}>
            Services
          </a>
        </nav>
      </header>
      {page}
      {job && (
        <JobDialog
          job={job}
          onClose={() => {
            job.then?.();
            setJob(null);
          }}
        />
      )}
    </>
  );
}

createRoot(document.getElementById("root")).render(<App />);
