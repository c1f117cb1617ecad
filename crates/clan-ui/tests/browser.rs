//! clan ui in a real browser: headless Chromium driven over WebDriver
//! (chromedriver on loopback, started and stopped by PID), against the real server
//! on a clan in a temp directory (real Nix, git, the restic engine).
//!
//! With CLAN_UI_SCREENSHOTS=DIR the tests save the README's screenshots there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};

/// WebDriver's key codes.
const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';
const ESCAPE: char = '\u{E00C}';

/// How long the page may take to show what a step waits for.
const PATIENCE: Duration = Duration::from_secs(60);

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A browser on `clan ui` serving the clan in `dir`.
struct Ui {
    client: Client,
    base: String,
    token: String,
    dir: PathBuf,
    _profile: tempfile::TempDir,
    _driver: Driver,
}

impl Ui {
    async fn start(dir: &Path) -> Ui {
        let mut config = clan_ui::Config::new(clan_core::ClanDir::open(dir, "the test").unwrap());
        config.admin_key_file = dir.parent().unwrap().join("admin-key.txt");
        clan_vars::keys::ensure_admin_identity(&config.admin_key_file).unwrap();
        let token = config.token.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, clan_ui::router(config)).await });

        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: apt-get install chromium chromium-driver)");
        let driver = Driver(driver);
        wait_listening(port);
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                format!("--user-data-dir={}", profile.path().display()),
            ] }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Ui {
            client,
            base,
            token,
            dir: dir.to_path_buf(),
            _profile: profile,
            _driver: driver,
        }
    }

    async fn open(&self, hash: &str) {
        self.client
            .goto(&format!("{}/?token={}", self.base, self.token))
            .await
            .unwrap();
        self.client
            .goto(&format!("{}/{hash}", self.base))
            .await
            .unwrap();
    }

    /// The first element `css` finds once there is one.
    async fn find(&self, css: &str) -> Element {
        self.wait(
            || async { self.client.find(Locator::Css(css)).await.ok() },
            css,
        )
        .await
    }

    /// The element of `xpath` once there is one.
    async fn find_x(&self, xpath: &str) -> Element {
        self.wait(
            || async { self.client.find(Locator::XPath(xpath)).await.ok() },
            xpath,
        )
        .await
    }

    /// Waits for `probe` to give something.
    async fn wait<T, F, Fut>(&self, probe: F, what: &str) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.client.source().await.unwrap_or_default();
                panic!("waited for {what}; the page is:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` contains `text`; returns that text.
    async fn text_of(&self, css: &str, text: &str) -> String {
        self.wait(
            || async {
                let t = self
                    .client
                    .find(Locator::Css(css))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                t.contains(text).then_some(t)
            },
            &format!("{css} saying {text:?}"),
        )
        .await
    }

    async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("CLAN_UI_SCREENSHOTS") {
            let png = self.client.screenshot().await.unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(Path::new(&dir).join(name), png).unwrap();
        }
    }

    /// Runs `script` (a function body) in the page and returns its value.
    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    /// Presses `key` (a WebDriver key code) where the focus is.
    async fn press(&self, key: char) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(&key.to_string())
            .await
            .unwrap();
    }

    /// What has the focus: its text, or its href for links.
    async fn focused(&self) -> String {
        self.js("const e = document.activeElement; return e.getAttribute('href') ?? e.textContent;")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Tabs forward until `want` (see [`Ui::focused`]) has the focus.
    async fn tab_to(&self, want: &str) {
        let mut seen = Vec::new();
        for _ in 0..60 {
            self.press(TAB).await;
            let now = self.focused().await;
            if now == want {
                return;
            }
            seen.push(now);
        }
        panic!("Tab never reached {want:?}; it went through {seen:?}");
    }

    /// Every control on the page without a name a screen reader can say, and
    /// whether the page scrolls sideways.
    async fn unlabelled_and_overflow(&self) -> (Value, bool) {
        let bad = self
            .js(r#"
              const bad = [];
              for (const el of document.querySelectorAll("input, select, textarea, button, a[href]")) {
                if (el.type === "hidden" || el.offsetParent === null) continue;
                const byLabel = [...(el.labels ?? [])].map((l) => l.textContent).join(" ");
                const by = el.getAttribute("aria-labelledby");
                const name = byLabel || el.getAttribute("aria-label") || (by && document.getElementById(by)?.textContent)
                  || (["BUTTON", "A"].includes(el.tagName) ? el.textContent : "") || el.title;
                if (!name || !name.trim()) bad.push(el.outerHTML.slice(0, 160));
              }
              return bad;"#)
            .await;
        let wide = self
            .js("return document.documentElement.scrollWidth > window.innerWidth;")
            .await;
        (bad, wide.as_bool().unwrap())
    }

    fn inventory(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("inventory.json")).unwrap()).unwrap()
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn clan_with(nix: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("clan.nix"), nix).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "the clan"]);
    tmp
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_guides_clan_a_new_machine_and_a_service_form_with_an_error_at_its_field() {
    let guide = include_str!("../../clan-cli/tests/fixtures/backup-guide/clan.nix");
    let tmp = clan_with(guide);
    let dir = tmp.path().join("clan");
    runtime().block_on(async {
        let ui = Ui::start(&dir).await;

        // Without the token: 401, for the page and the API.
        let http = reqwest::Client::new();
        for path in ["/", "/api/clan", "/app.js", "/?token=wrong"] {
            let status = http
                .get(format!("{}{path}", ui.base))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status.as_u16(), 401, "{path}");
        }

        // The overview: both machines of the guide.
        ui.open("#/").await;
        ui.text_of("main", "backup-server").await;
        let cards = ui
            .client
            .find_all(Locator::Css("[data-testid=machine-card] h3"))
            .await
            .unwrap();
        let mut names = Vec::new();
        for c in cards {
            names.push(c.text().await.unwrap());
        }
        assert_eq!(names, ["alice-laptop", "backup-server"]);
        ui.screenshot("overview.png").await;

        // A new machine.
        ui.find_x("//button[text()='New machine']")
            .await
            .click()
            .await
            .unwrap();
        ui.find("form[aria-label='New machine'] input[name=name]")
            .await
            .send_keys("carol-desktop")
            .await
            .unwrap();
        ui.find("form[aria-label='New machine'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        ui.text_of("main", "carol-desktop").await;
        assert_eq!(
            ui.inventory()["machines"]["carol-desktop"],
            json!({ "machineClass": "linux" })
        );
        assert_eq!(
            git(&dir, &["log", "-1", "--format=%s"]).trim(),
            "machines: add carol-desktop"
        );

        // A borgbackup instance through the forms: members, then settings with a
        // value the schema refuses, shown at its field, then fixed and saved.
        ui.client
            .goto(&format!("{}/#/services", ui.base))
            .await
            .unwrap();
        ui.find("form[aria-label='Add a service'] select[name=module]")
            .await
            .select_by_value("borgbackup")
            .await
            .unwrap();
        ui.find("form[aria-label='Add a service'] input[name=instance]")
            .await
            .send_keys("offsite")
            .await
            .unwrap();
        ui.find("form[aria-label='Add a service'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        ui.find("section[aria-label='Role server']").await;
        ui.find_x(
            "//form[@aria-label='Members of server']//label[contains(., 'carol-desktop')]/input",
        )
        .await
        .click()
        .await
        .unwrap();
        ui.find("form[aria-label='Members of server'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        ui.wait(
            || async {
                (git(&dir, &["log", "-1", "--format=%s"]).trim()
                    == "instances: members of offsite server")
                    .then_some(())
            },
            "the members' commit",
        )
        .await;
        assert_eq!(
            ui.inventory()["instances"]["offsite"]["roles"],
            json!({ "server": { "machines": { "carol-desktop": {} } } })
        );
        let directory = ui
            .find("section[aria-label='Role server'] [data-testid=layer-role] input[id$='_directory']")
            .await;
        directory.send_keys("backups").await.unwrap();
        let error = ui
            .text_of("section[aria-label='Role server'] [data-testid=layer-role]", "must match pattern")
            .await;
        assert!(error.contains("must match pattern"), "{error}");
        ui.screenshot("service-form.png").await;
        directory.clear().await.unwrap();
        directory.send_keys("/srv/borg").await.unwrap();
        ui.find("section[aria-label='Role server'] [data-testid=layer-role] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        ui.text_of("section[aria-label='Role server'] [data-testid=layer-role] [role=status]", "committed")
            .await;
        assert_eq!(
            ui.inventory()["instances"]["offsite"],
            json!({ "module": { "name": "borgbackup" }, "roles": { "server": {
                "machines": { "carol-desktop": {} }, "settings": { "directory": "/srv/borg" },
            } } })
        );
        assert_eq!(
            git(&dir, &["log", "-3", "--format=%s"])
                .lines()
                .collect::<Vec<_>>(),
            [
                "instances: settings of offsite server (role-wide)",
                "instances: members of offsite server",
                "instances: add offsite (borgbackup)",
            ]
        );
        // What `clan inventory show backup-server` says (the same resolution).
        let fleet = clan_ops::Fleet::load(
            clan_core::ClanDir::open(&dir, "t").unwrap(),
            &[],
            &clan_core::event::Silent,
        )
        .unwrap();
        let server = fleet.machine("carol-desktop").unwrap();
        let a = server
            .instances
            .iter()
            .find(|a| a.instance == "offsite")
            .unwrap();
        assert_eq!(a.settings["directory"], "/srv/borg");
        ui.client.close().await.unwrap();
    });
}

/// Every file under `root` with its content and mode.
fn picture(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(p.clone());
                out.insert(rel, (Vec::new(), meta.permissions().mode()));
            } else {
                out.insert(rel, (std::fs::read(&p).unwrap(), meta.permissions().mode()));
            }
        }
    }
    out
}

#[test]
fn backing_up_and_restoring_a_local_machine_from_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let shop = root.join("srv/shop");
    std::fs::create_dir_all(shop.join("invoices")).unwrap();
    std::fs::write(
        shop.join("invoices/2026-001.txt"),
        "Invoice 2026-001: 5000 EUR\n",
    )
    .unwrap();
    std::fs::write(shop.join("welcome.md"), "Hello World!\n").unwrap();
    std::fs::write(root.join("password"), "ui test repository password\n").unwrap();
    let r = root.display();
    let clan = clan_with(&format!(
        r#"{{
          meta.name = "shop";
          inventory.machines.shop-server = {{ machineClass = "linux"; deploy.targetHost = "root@localhost"; }};
          inventory.instances.restic.roles.client.machines.shop-server.settings = {{
            repository = "{r}/repository"; passwordFile = "{r}/password";
          }};
          machines.shop-server = {{ ... }}: {{
            clan.core.state.shop.folders = [ "{r}/srv/shop" ];
            clan.core.backups.stagingDirectory = "{r}/staging";
          }};
        }}"#
    ));
    let dir = clan.path().join("clan");
    runtime().block_on(async {
        let ui = Ui::start(&dir).await;
        ui.open("#/machines/shop-server").await;
        ui.find_x("//button[text()='Back up now']")
            .await
            .click()
            .await
            .unwrap();
        let end = ui.text_of("[data-testid=job-end]", "restic: ").await;
        assert!(end.starts_with('✓'), "{end}");
        let log = ui.find("[data-testid=job-log]").await.text().await.unwrap();
        assert!(!log.trim().is_empty(), "the job showed its progress");
        ui.find_x("//div[@role='dialog']//button[text()='Close']")
            .await
            .click()
            .await
            .unwrap();

        // A restore drill of that backup; the health table shows it.
        ui.find_x("//button[text()='Run a restore drill']")
            .await
            .click()
            .await
            .unwrap();
        let end = ui.text_of("[data-testid=job-end]", "files checked").await;
        assert_eq!(end, "✓ restic: state 'shop': ok, 2 files checked");
        ui.find_x("//div[@role='dialog']//button[text()='Close']")
            .await
            .click()
            .await
            .unwrap();
        let health = ui.text_of("[data-testid=health]", "ok, ").await;
        assert!(
            health.contains("restic") && health.contains("shop"),
            "{health}"
        );

        let before = picture(&shop);
        std::fs::write(shop.join("welcome.md"), "damaged\n").unwrap();
        std::fs::remove_dir_all(shop.join("invoices")).unwrap();
        std::fs::write(shop.join("stray.txt"), "not in the backup\n").unwrap();

        ui.find_x("//button[text()='Restore…']")
            .await
            .click()
            .await
            .unwrap();
        let consequences = ui
            .text_of("[data-testid=restore-consequences]", "safety backup")
            .await;
        assert!(
            consequences.contains(&shop.display().to_string()),
            "{consequences}"
        );
        ui.screenshot("restore-dialog.png").await;
        ui.find_x("//div[@role='dialog']//button[text()='Restore']")
            .await
            .click()
            .await
            .unwrap();
        let end = ui.text_of("[data-testid=job-end]", "Restored").await;
        assert!(end.starts_with('✓') && end.contains("shop"), "{end}");
        assert_eq!(picture(&shop), before, "the data is back exactly");
        ui.client.close().await.unwrap();
    });
}

#[test]
fn on_a_phone_by_keyboard_prompts_update_reachability_and_delete() {
    let clan = clan_with(
        r#"{
          meta.name = "phone";
          inventory.machines.web = { machineClass = "linux"; deploy.targetHost = "root@127.0.0.2:1"; };
          machines.web = { ... }: {
            clan.core.state.site.folders = [ "/srv/site" ];
            clan.core.vars.generators.site = {
              prompts.title = { description = "The site's title"; };
              prompts.password = { description = "The admin password"; type = "hidden"; };
              files.title.secret = false;
              files.password = { };
              script = ''
                cat "$prompts/title" > "$out/title"
                cat "$prompts/password" > "$out/password"
              '';
            };
          };
        }"#,
    );
    let dir = clan.path().join("clan");
    let admin = clan_vars::keys::ensure_admin_identity(&clan.path().join("admin-key.txt")).unwrap();
    clan_vars::store::Store::new(&dir)
        .add_admin("tester", &admin.to_public())
        .unwrap();
    std::fs::write(
        dir.join("inventory.json"),
        r#"{ "machines": { "keep": { "machineClass": "linux", "deploy": { "targetHost": "root@localhost" } } } }"#,
    )
    .unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "an admin"]);
    runtime().block_on(async {
        let ui = Ui::start(&dir).await;
        ui.client.set_window_size(390, 844).await.unwrap();
        ui.open("#/").await;
        ui.text_of("main", "keep").await;
        ui.text_of("section[aria-label=Problems]", "vars to generate")
            .await;
        let (bad, wide) = ui.unlabelled_and_overflow().await;
        assert_eq!(bad, json!([]), "every control of the overview has a name");
        assert!(!wide, "the overview fits 390 px");
        ui.screenshot("phone-overview.png").await;

        // Which machines answer: the one on this machine does, the other not.
        ui.find_x("//button[text()='Check which machines answer']")
            .await
            .send_keys(&ENTER.to_string())
            .await
            .unwrap();
        let down = ui
            .text_of("[data-testid=reachability]", "does not answer")
            .await;
        assert!(
            down.starts_with("web does not answer: cannot reach root@127.0.0.2:1"),
            "{down}"
        );
        let answers = ui
            .client
            .find_all(Locator::Css("[data-testid=reachability]"))
            .await
            .unwrap();
        assert_eq!(answers.len(), 1, "only web is reported");

        // From the top of the page, Tab reaches the machine; Enter opens it.
        ui.js("document.activeElement.blur(); window.scrollTo(0, 0);")
            .await;
        ui.tab_to("#/machines/web").await;
        ui.press(ENTER).await;
        ui.text_of("main h1", "web").await;
        ui.find("section[aria-label=Prompts]").await;
        let (bad, wide) = ui.unlabelled_and_overflow().await;
        assert_eq!(
            bad,
            json!([]),
            "every control of the machine page has a name"
        );
        assert!(!wide, "the machine page fits 390 px");

        // The prompts, typed: a hidden answer typed differently twice is refused.
        let form = "section[aria-label=Prompts] form";
        ui.find(&format!("{form} input[name='site/title']"))
            .await
            .send_keys("Our shop")
            .await
            .unwrap();
        let password = ui
            .find(&format!("{form} input[name='site/password']"))
            .await;
        assert_eq!(
            password.attr("type").await.unwrap().as_deref(),
            Some("password")
        );
        password.send_keys("correct horse").await.unwrap();
        let again = ui
            .find(&format!("{form} input[name='site/password#again']"))
            .await;
        again.send_keys("correct hose").await.unwrap();
        again.send_keys(&ENTER.to_string()).await.unwrap();
        ui.text_of(&format!("{form} [role=alert]"), "the two entries differ")
            .await;
        again.clear().await.unwrap();
        again.send_keys("correct horse").await.unwrap();
        again.send_keys(&ENTER.to_string()).await.unwrap();
        let end = ui.text_of("[data-testid=job-end]", "Generated").await;
        assert_eq!(end, "✓ Generated: web/site");
        // The job's Close button has the focus; Escape closes the dialog.
        ui.wait(
            || async { (ui.focused().await == "Close").then_some(()) },
            "Close focused",
        )
        .await;
        ui.press(ESCAPE).await;
        ui.wait(
            || async {
                ui.client
                    .find(Locator::Css("[role=dialog]"))
                    .await
                    .is_err()
                    .then_some(())
            },
            "the dialog closed",
        )
        .await;
        let mut titles = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    assert!(
                        !String::from_utf8_lossy(&bytes).contains("correct horse"),
                        "the hidden answer is in the clear in {}",
                        p.display()
                    );
                    if p.ends_with("site/title/value") || p.ends_with("site/title") {
                        titles.push(String::from_utf8(bytes).unwrap());
                    }
                }
            }
        }
        assert_eq!(titles, ["Our shop"], "the public var holds the answer");

        // Update: the machine cannot be reached, and the dialog says so.
        ui.find_x("//button[text()='Update machine']")
            .await
            .send_keys(&ENTER.to_string())
            .await
            .unwrap();
        let end = ui.text_of("[data-testid=job-end]", "cannot reach").await;
        assert!(end.starts_with("✗ "), "{end}");
        assert!(end.contains("root@127.0.0.2:1"), "{end}");
        ui.wait(
            || async { (ui.focused().await == "Close").then_some(()) },
            "Close focused",
        )
        .await;
        ui.press(ENTER).await;

        // web is defined in clan.nix: no delete here, and the page says why.
        let why = ui.text_of("[data-testid=undeletable]", "clan.nix").await;
        assert!(why.contains("remove it there"), "{why}");
        let delete = ui.find_x("//button[text()='Delete…']").await;
        assert_eq!(
            delete.attr("disabled").await.unwrap().as_deref(),
            Some("true")
        );

        // keep is in inventory.json. Delete, by keyboard: Escape cancels, then the
        // typed name and Enter.
        ui.find("header a.brand")
            .await
            .send_keys(&ENTER.to_string())
            .await
            .unwrap();
        ui.text_of("main h1", "phone").await;
        ui.js("document.activeElement.blur(); window.scrollTo(0, 0);")
            .await;
        ui.tab_to("#/machines/keep").await;
        ui.press(ENTER).await;
        ui.text_of("main h1", "keep").await;
        ui.find_x("//button[text()='Delete…']")
            .await
            .send_keys(&ENTER.to_string())
            .await
            .unwrap();
        ui.find("[role=dialog] input").await;
        ui.press(ESCAPE).await;
        ui.wait(
            || async {
                ui.client
                    .find(Locator::Css("[role=dialog]"))
                    .await
                    .is_err()
                    .then_some(())
            },
            "the delete dialog closed",
        )
        .await;
        assert_eq!(
            ui.focused().await,
            "Delete…",
            "focus went back to the button"
        );
        ui.press(ENTER).await;
        let name = ui.find("[role=dialog] input").await;
        name.send_keys("keep").await.unwrap();
        ui.press(TAB).await;
        assert_eq!(ui.focused().await, "Delete");
        ui.press(ENTER).await;
        ui.text_of("main h1", "phone").await;
        assert_eq!(
            git(&dir, &["log", "-1", "--format=%s"]).trim(),
            "machines: delete keep"
        );
        assert_eq!(ui.inventory()["machines"], json!({}));
        ui.wait(
            || async {
                let text = ui.find("main").await.text().await.ok()?;
                (!text.contains("keep")).then_some(())
            },
            "the overview without keep",
        )
        .await;

        // The services page and a module's form, at the same width.
        ui.find("nav a[href='#/services']")
            .await
            .send_keys(&ENTER.to_string())
            .await
            .unwrap();
        ui.find("form[aria-label='Add a service'] select[name=module]")
            .await;
        let (bad, wide) = ui.unlabelled_and_overflow().await;
        assert_eq!(
            bad,
            json!([]),
            "every control of the services page has a name"
        );
        assert!(!wide, "the services page fits 390 px");
        ui.find("form[aria-label='Add a service'] select[name=module]")
            .await
            .select_by_value("borgbackup")
            .await
            .unwrap();
        let name = ui
            .find("form[aria-label='Add a service'] input[name=instance]")
            .await;
        name.send_keys("nightly").await.unwrap();
        name.send_keys(&ENTER.to_string()).await.unwrap();
        ui.find("section[aria-label='Role server'] [data-testid=layer-role] input")
            .await;
        let (bad, wide) = ui.unlabelled_and_overflow().await;
        assert_eq!(
            bad,
            json!([]),
            "every control of the instance's forms has a name"
        );
        assert!(!wide, "the instance's forms fit 390 px");
        ui.screenshot("phone-service-form.png").await;
        ui.client.close().await.unwrap();
    });
}
