//! `cors-explain` as a user runs it: the binary, its exit codes, its JSON and text output.

// A test file: a panic is how a test fails (clippy.toml covers only #[test] functions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cors_core::config::Config;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_cors-explain");

static FILES: AtomicUsize = AtomicUsize::new(0);

fn file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cors-explain-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", FILES.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&path, content).unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn header<'v>(ex: &'v Value, name: &str) -> Option<&'v str> {
    ex["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap())
}

const CONFIG: &str = r#"{
  "policy": {"allow_origins": ["https://app.example"], "allow_methods": "GET, PUT",
             "allow_headers": "content-type", "max_age": 600},
  "routes": {
    "api": {"allow_origins": ["https://app.example"], "allow_credentials": true,
            "allow_headers": "*", "expose_headers": "x-total", "debug_reason_header": true},
    "off": null
  },
  "virtual_hosts": {"public": {"allow_origins": ["*"]}}
}"#;

fn config() -> String {
    file("config.json", CONFIG).display().to_string()
}

#[test]
fn bad_config_prints_the_filters_load_error_and_exits_1() {
    let bad =
        r#"{"routes": {"api": {"allow_origins": ["https://a.com", "app.example.com/path"]}}}"#;
    let path = file("bad.json", bad);
    let expected = format!(
        "invalid plugin configuration: {}\n",
        Config::from_bytes(bad.as_bytes()).unwrap_err()
    );
    assert!(expected.contains("routes.api.allow_origins[1]: "));
    for args in [
        vec![path.to_str().unwrap(), "--origin", "https://a.com"],
        vec!["--check", path.to_str().unwrap()],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn check_exits_0_for_a_valid_config_and_1_otherwise() {
    let out = run(&["--check", &config()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    let star_credentials = file(
        "star.json",
        r#"{"policy": {"allow_origins": ["*"], "allow_credentials": true}}"#,
    );
    let out = run(&["--check", star_credentials.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("invalid plugin configuration: policy.allow_credentials: "));
    let out = run(&["--check", "/nonexistent/cors.json"]);
    assert_eq!(out.status.code(), Some(1));
    let typo = file("typo.json", r#"{"policy": {"allow_origin": ["*"]}}"#);
    let out = run(&["--check", typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy.allow_origin: unknown field"));
}

#[test]
fn check_warns_but_passes() {
    let w = file(
        "warn.json",
        r#"{"policy": {"allow_origins": ["https://a.com"], "allow_credentials": true, "expose_headers": "*"}}"#,
    );
    let out = run(&["--check", w.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("warning: policy.expose_headers"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(run(&[&config(), "--bogus"]).status.code(), Some(2));
    assert_eq!(run(&[&config(), "--origin"]).status.code(), Some(2));
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--request-method"));
}

#[test]
fn allowed_preflight_is_answered_and_the_browser_goes_on() {
    let c = config();
    let ex = json(&[
        &c,
        "--origin",
        "https://app.example",
        "--request-method",
        "PUT",
        "--request-headers",
        "Content-Type",
    ]);
    assert_eq!(ex["request"]["method"], "OPTIONS");
    assert_eq!(ex["kind"], "preflight");
    assert_eq!(ex["decision"], "answered_preflight");
    assert_eq!(ex["forwarded"], false);
    assert_eq!(ex["status"], 200);
    assert_eq!(ex["policy"], "policy");
    assert_eq!(ex["selected_by"]["source"], "default");
    assert_eq!(ex["counter"], "wasmcustom.cors.preflight.allowed");
    assert_eq!(
        header(&ex, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        header(&ex, "access-control-allow-methods"),
        Some("GET, PUT")
    );
    assert_eq!(header(&ex, "access-control-max-age"), Some("600"));
    assert_eq!(header(&ex, "vary"), Some("Origin"));
    assert_eq!(ex["browser"]["without_credentials"]["allowed"], true);
    // No Access-Control-Allow-Credentials: a credentialed fetch is blocked.
    assert_eq!(ex["browser"]["with_credentials"]["allowed"], false);
    assert_eq!(ex["then"]["decision"], "forwarded");
    assert_eq!(ex["then"]["request"]["method"], "PUT");
}

#[test]
fn refused_origin_names_the_field_and_the_reason_header_shows_it() {
    let ex = json(&[
        &config(),
        "--route",
        "api",
        "--origin",
        "https://app.example/",
        "--upstream-header",
        "access-control-allow-origin: *",
    ]);
    let reason = "origin https://app.example/ is not in routes.api.allow_origins";
    assert_eq!(ex["decision"], "refused");
    assert_eq!(ex["refusal"], "origin");
    assert_eq!(ex["reason"], reason);
    assert_eq!(ex["selected_by"]["key"], "api");
    assert_eq!(header(&ex, "x-cors-reason"), Some(reason));
    // The upstream's own ACAO is removed.
    assert_eq!(header(&ex, "access-control-allow-origin"), None);
    assert!(ex["edits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["header"] == "access-control-allow-origin" && e["value"].is_null()));
    assert_eq!(ex["counter"], "wasmcustom.cors.actual.denied_origin");
    assert!(ex["browser"]["without_credentials"]["message"]
        .as_str()
        .unwrap()
        .starts_with("No 'Access-Control-Allow-Origin'"));
}

#[test]
fn near_miss_origins_get_a_hint() {
    for (origin, hint) in [
        (
            "https://app.example/",
            "https://app.example would be allowed",
        ),
        ("https://app.example:443", "browsers omit the default port"),
        (
            "https://APP.example",
            "browsers send the origin in lower case",
        ),
    ] {
        let ex = json(&[&config(), "--origin", origin]);
        assert_eq!(ex["refusal"], "origin");
        let notes = ex["notes"].to_string();
        assert!(notes.contains(hint), "{origin}: {notes}");
    }
    let ex = json(&[&config(), "--origin", "https://other.example"]);
    assert_eq!(ex["notes"].as_array().unwrap().len(), 0);
}

#[test]
fn options_without_request_method_is_not_a_preflight() {
    let ex = json(&[
        &config(),
        "--method",
        "OPTIONS",
        "--origin",
        "https://app.example",
    ]);
    assert_eq!(ex["kind"], "actual");
    assert_eq!(ex["decision"], "forwarded");
    assert_eq!(ex["forwarded"], true);
    assert!(ex["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("is not a preflight")));
}

#[test]
fn star_answer_blocks_credentialed_requests_only() {
    let ex = json(&[
        &config(),
        "--vhost",
        "public",
        "--origin",
        "https://any.example",
    ]);
    assert_eq!(ex["selected_by"]["source"], "virtual_host");
    assert_eq!(header(&ex, "access-control-allow-origin"), Some("*"));
    assert_eq!(ex["browser"]["without_credentials"]["allowed"], true);
    assert!(ex["browser"]["with_credentials"]["message"]
        .as_str()
        .unwrap()
        .contains("wildcard '*'"));
}

#[test]
fn any_headers_mirror_authorization_so_credentialed_preflights_pass() {
    let ex = json(&[
        &config(),
        "--route",
        "api",
        "--origin",
        "https://app.example",
        "--request-method",
        "GET",
        "--request-headers",
        "Authorization, X-Token",
    ]);
    assert_eq!(ex["decision"], "answered_preflight");
    assert_eq!(
        header(&ex, "access-control-allow-headers"),
        Some("authorization, x-token")
    );
    assert_eq!(ex["browser"]["with_credentials"]["allowed"], true);
}

#[test]
fn method_refusal_is_answered_without_the_method() {
    let ex = json(&[
        &config(),
        "--origin",
        "https://app.example",
        "--request-method",
        "DELETE",
    ]);
    assert_eq!(ex["decision"], "refused");
    assert_eq!(ex["status"], 200);
    assert_eq!(ex["reason"], "method DELETE is not in policy.allow_methods");
    assert!(ex["browser"]["without_credentials"]["message"]
        .as_str()
        .unwrap()
        .contains("Method DELETE is not allowed"));
    assert!(ex["then"].is_null());
}

#[test]
fn a_null_entry_passes_and_a_request_without_origin_gets_only_vary() {
    let ex = json(&[
        &config(),
        "--route",
        "off",
        "--origin",
        "https://app.example",
    ]);
    assert_eq!(ex["decision"], "passed_through");
    assert_eq!(ex["policy"], Value::Null);
    assert!(ex["selected_by"]["why"]
        .as_str()
        .unwrap()
        .contains("CORS is off"));
    let ex = json(&[&config()]);
    assert_eq!(
        ex["decision"], "forwarded",
        "a GET's response may be cached"
    );
    assert_eq!(header(&ex, "vary"), Some("Origin"));
    assert!(ex["browser"].is_null());
    assert!(ex["kind"].is_null());
    assert!(ex["counter"].is_null());
    let ex = json(&[&config(), "--method", "POST"]);
    assert_eq!(ex["decision"], "passed_through");
    assert_eq!(ex["headers"], serde_json::json!([]));
}

const ENVOY_YAML: &str = r#"
static_resources:
  listeners:
  - name: main
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          route_config:
            virtual_hosts:
            - name: api
              domains: ["api.example.com"]
              routes:
              - name: users
                match: {prefix: "/users/"}
                route: {cluster: upstream}
                metadata:
                  filter_metadata:
                    cors: {allow_origins: ["https://meta.example"], max_age: 60}
              - name: items
                match: {prefix: "/"}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: cors
                root_id: cors
                vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: build/cors_filter.wasm}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.Struct
                  value:
                    policy: {allow_origins: ["https://app.example"], max_age: 600}
                    routes: {items: {allow_origins: ["https://items.example"]}}
                    route_metadata_namespace: cors
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"#;

#[test]
fn envoy_yaml_struct_config_routes_and_metadata() {
    let y = file("envoy.yaml", ENVOY_YAML).display().to_string();
    let ex = json(&[
        &y,
        "--host",
        "api.example.com",
        "--path",
        "/users/7",
        "--origin",
        "https://meta.example",
    ]);
    assert_eq!(ex["route"], "users");
    assert_eq!(ex["virtual_host"], "api");
    assert_eq!(ex["selected_by"]["source"], "route_metadata");
    assert_eq!(ex["policy"], "route metadata filter_metadata.cors");
    assert_eq!(ex["decision"], "forwarded");
    assert!(ex["config"].as_str().unwrap().contains("Struct"));
    let ex = json(&[&y, "--route", "items", "--origin", "https://items.example"]);
    assert_eq!(ex["virtual_host"], "api");
    assert_eq!(ex["policy"], "routes.items");
    let ex = json(&[
        &y,
        "--host",
        "api.example.com",
        "--path",
        "/x",
        "--origin",
        "https://app.example",
    ]);
    assert_eq!(ex["route"], "items");
    assert_eq!(ex["decision"], "refused");
}

#[test]
fn envoy_yaml_string_value_config_and_its_errors() {
    let text = ENVOY_YAML.replace(
        r#"                  "@type": type.googleapis.com/google.protobuf.Struct
                  value:
                    policy: {allow_origins: ["https://app.example"], max_age: 600}
                    routes: {items: {allow_origins: ["https://items.example"]}}
                    route_metadata_namespace: cors"#,
        r#"                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"policy": {"allow_origins": ["https://json.example"]}}'"#,
    );
    assert_ne!(text, ENVOY_YAML);
    let y = file("envoy-string.yaml", &text).display().to_string();
    let ex = json(&[&y, "--origin", "https://json.example"]);
    assert_eq!(ex["decision"], "forwarded");
    assert!(ex["config"].as_str().unwrap().contains("StringValue"));
    let bad = text.replace("https://json.example", "json.example");
    let b = file("envoy-bad.yaml", &bad);
    let out = run(&["--check", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "invalid plugin configuration: policy.allow_origins[0]: \"json.example\" is not an origin (expected scheme://host[:port], \"*\" or \"null\")\n"
    );
}

#[test]
fn check_reports_invalid_route_metadata_policies() {
    let bad = ENVOY_YAML.replace(
        r#"allow_origins: ["https://meta.example"], max_age: 60"#,
        r#"allow_origins: "https://meta.example""#,
    );
    assert_ne!(bad, ENVOY_YAML);
    let b = file("envoy-meta.yaml", &bad);
    let out = run(&["--check", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("invalid policy, CORS is off on this route: route metadata filter_metadata.cors.allow_origins: expected a list of origins"));
}

#[test]
fn batch_mode_answers_each_line_in_order() {
    let reqs = file(
        "reqs.jsonl",
        concat!(
            r#"{"id": "a", "origin": "https://app.example", "request_method": "PUT"}"#,
            "\n",
            r#"{"id": "b", "origin": "https://evil.example", "route": "api"}"#,
            "\n\n",
            r#"{"id": "c", "bogus": 1}"#,
            "\n"
        ),
    );
    let out = run(&[&config(), "--requests", reqs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2)); // line c
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["decision"], "answered_preflight");
    assert_eq!(lines[1]["decision"], "refused");
    assert!(lines[2]["error"].as_str().unwrap().contains("bogus"));
}

#[test]
fn text_output_reads_as_a_report() {
    let out = run(&[
        &config(),
        "--route",
        "api",
        "--origin",
        "https://evil.example",
        "--request-method",
        "PUT",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Policy    routes.api (selected: routes[\"api\"] matches the route name)",
        "Decision  REFUSED: forwarded upstream",
        "Reason    origin https://evil.example is not in routes.api.allow_origins",
        "Counter   wasmcustom.cors.preflight.denied_origin",
        "x-cors-reason: origin https://evil.example is not in routes.api.allow_origins",
        "BLOCKED: Response to preflight request doesn't pass access control check",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

/// ENVOY_YAML with a second listener, `second`: the same, with `edit` applied to it.
fn two_listeners(edit: impl Fn(String) -> String) -> String {
    let second = ENVOY_YAML
        .replace("  - name: main\n", "  - name: second\n")
        .replace("static_resources:\n  listeners:\n", "");
    format!("{ENVOY_YAML}{}", edit(second))
}

#[test]
fn several_filters_need_a_listener() {
    let both = two_listeners(|l| l.replace("max_age: 600", "max_age: 601"));
    let y = file("two.yaml", &both);
    let out = run(&[y.to_str().unwrap(), "--origin", "https://app.example"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listener"));
    let ex = json(&[
        y.to_str().unwrap(),
        "--listener",
        "second",
        "--origin",
        "https://app.example",
    ]);
    assert!(ex["config"].as_str().unwrap().contains("\"second\""));
}

#[test]
fn the_same_filter_and_routes_on_several_listeners_count_once() {
    // One API on a plain and a TLS listener, as envoy/demo.yaml serves it.
    let y = file("same.yaml", &two_listeners(|l| l));
    let ex = json(&[y.to_str().unwrap(), "--origin", "https://app.example"]);
    assert!(ex["config"].as_str().unwrap().contains("\"main\""));
}

/// Splits a shell command line of the guide (words, 'single-quoted' words).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn troubleshooting_guide_shows_the_real_output_of_cors_explain() {
    // The guide (docs/troubleshooting.md) names the demo config relative to the workspace root.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let guide = std::fs::read_to_string(format!("{root}/docs/troubleshooting.md")).unwrap();
    let mut checked = 0;
    for block in guide.split("```console\n").skip(1) {
        let Some((command, rest)) = block.split_once('\n') else {
            continue;
        };
        let Some(args) = command.strip_prefix("$ cors-explain envoy/demo.yaml ") else {
            continue;
        };
        if args.contains("--json") {
            continue; // abridged in the guide
        }
        let shown = rest.split("```").next().unwrap();
        let out = Command::new(BIN)
            .current_dir(root)
            .arg("envoy/demo.yaml")
            .args(shell_words(args))
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), shown, "{command}");
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} examples found");
}

#[test]
fn a_refused_port_of_a_listed_host_gets_the_any_port_hint() {
    let c = file(
        "dev.json",
        r#"{"policy": {"allow_origins": ["http://localhost:3000"]}}"#,
    );
    let ex = json(&[c.to_str().unwrap(), "--origin", "http://localhost:5173"]);
    assert_eq!(ex["refusal"], "origin");
    let notes = ex["notes"].to_string();
    assert!(
        notes.contains("http://localhost:* would be allowed"),
        "{notes}"
    );
    let c = file(
        "dev-any.json",
        r#"{"policy": {"allow_origins": ["http://localhost:*"]}}"#,
    );
    let ex = json(&[c.to_str().unwrap(), "--origin", "http://localhost:5173"]);
    assert_eq!(ex["decision"], "forwarded");
    assert_eq!(
        header(&ex, "access-control-allow-origin"),
        Some("http://localhost:5173")
    );
}

/// ENVOY_YAML with its routes split by method, as Gateway API method matches reach Envoy, and
/// a policy on the PUT route only.
fn split_yaml() -> String {
    let edits = [
        (r#"domains: ["api.example.com"]"#, r#"domains: ["*"]"#),
        (
            r#"              - name: users
                match: {prefix: "/users/"}
                route: {cluster: upstream}
                metadata:
                  filter_metadata:
                    cors: {allow_origins: ["https://meta.example"], max_age: 60}
              - name: items
                match: {prefix: "/"}
                route: {cluster: upstream}"#,
            r#"              - name: items-put
                match: { prefix: /api/items, headers: [{ name: ":method", string_match: { exact: PUT } }] }
                route: {cluster: upstream}
              - name: items-get
                match: { prefix: /api/items, headers: [{ name: ":method", string_match: { exact: GET } }] }
                route: {cluster: upstream}"#,
        ),
        (
            r#"                    policy: {allow_origins: ["https://app.example"], max_age: 600}
                    routes: {items: {allow_origins: ["https://items.example"]}}
                    route_metadata_namespace: cors"#,
            r#"                    routes: {items-put: {allow_origins: ["https://app.example"], allow_methods: PUT}}"#,
        ),
    ];
    edits
        .iter()
        .fold(ENVOY_YAML.to_owned(), |text, (from, to)| {
            assert!(text.contains(from), "{from}");
            text.replace(from, to)
        })
}

#[test]
fn a_preflight_routed_apart_from_its_actual_request_is_explained() {
    let y = file("split.yaml", &split_yaml()).display().to_string();
    let args = [
        y.as_str(),
        "--path",
        "/api/items",
        "--origin",
        "https://app.example",
        "--request-method",
        "PUT",
    ];
    let ex = json(&args);
    assert_eq!(ex["route"], Value::Null, "no route matches OPTIONS");
    assert_eq!(ex["decision"], "passed_through");
    let notes = ex["notes"].to_string();
    assert!(
        notes.contains("the preflight (OPTIONS) takes no route, but the actual PUT request takes route \\\"items-put\\\""),
        "{notes}"
    );
    let actual = json(&[
        y.as_str(),
        "--path",
        "/api/items",
        "--method",
        "PUT",
        "--origin",
        "https://app.example",
    ]);
    assert_eq!(actual["route"], "items-put");
    assert_eq!(actual["decision"], "forwarded");
    // The native build would match the route again with :method PUT.
    assert_eq!(ex["build"], "wasm");
    assert_eq!(ex["other_build"]["build"], "native");
    assert_eq!(ex["other_build"]["policy"], "routes.items-put");
    assert_eq!(ex["other_build"]["decision"], "answered_preflight");
}

/// A listener whose CORS filter is the native build, with per-route configurations on the
/// route configuration, on virtual host `api` and on some of its routes.
const NATIVE_YAML: &str = r#"
static_resources:
  listeners:
  - name: native
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: native
          route_config:
            typed_per_filter_config:
              cors:
                "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                dynamic_module_config: {name: cors}
                filter_name: cors
                filter_config:
                  "@type": type.googleapis.com/google.protobuf.Struct
                  value: {allow_origins: ["https://table.example"]}
            virtual_hosts:
            - name: api
              domains: ["api.example.com"]
              typed_per_filter_config:
                cors:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                  dynamic_module_config: {name: cors}
                  filter_name: cors
                  filter_config:
                    "@type": type.googleapis.com/google.protobuf.Struct
                    value: {allow_origins: ["https://vhost.example"]}
              routes:
              - name: own
                match: {prefix: "/own"}
                route: {cluster: upstream}
                typed_per_filter_config:
                  cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                    dynamic_module_config: {name: cors}
                    filter_name: cors
                    filter_config:
                      "@type": type.googleapis.com/google.protobuf.StringValue
                      value: '{"allow_origins": ["https://route.example"]}'
              - name: off
                match: {prefix: "/off"}
                route: {cluster: upstream}
                typed_per_filter_config:
                  cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                    dynamic_module_config: {name: cors}
                    filter_name: cors
                    filter_config: {"@type": type.googleapis.com/google.protobuf.StringValue, value: "null"}
              - name: inherit
                match: {prefix: "/inherit"}
                route: {cluster: upstream}
                typed_per_filter_config:
                  cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                    dynamic_module_config: {name: cors}
                    filter_name: cors
                    filter_config: {"@type": type.googleapis.com/google.protobuf.Struct, value: {}}
              - name: plain
                match: {prefix: "/"}
                route: {cluster: upstream}
            - name: other
              domains: ["*"]
              routes:
              - name: elsewhere
                match: {prefix: "/"}
                route: {cluster: upstream}
          http_filters:
          - name: cors
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
              dynamic_module_config: {name: cors}
              filter_name: cors
              filter_config:
                "@type": type.googleapis.com/google.protobuf.Struct
                value:
                  policy: {allow_origins: ["https://app.example"], max_age: 600}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"#;

/// `--json` on NATIVE_YAML (or `yaml`) for a GET to `path` on api.example.com from `origin`.
fn native_get(yaml: &str, path: &str, origin: &str) -> Value {
    let y = file("native.yaml", yaml).display().to_string();
    json(&[
        &y,
        "--host",
        "api.example.com",
        "--path",
        path,
        "--origin",
        origin,
    ])
}

#[test]
fn the_most_specific_per_route_configuration_of_the_native_build_applies() {
    // The route's own entry on /own, the virtual host's on /plain.
    for (path, origin, at) in [
        (
            "/own",
            "https://route.example",
            "route \"own\" of virtual host \"api\"",
        ),
        ("/plain", "https://vhost.example", "virtual host \"api\""),
    ] {
        let ex = native_get(NATIVE_YAML, path, origin);
        let why = ex["selected_by"]["why"].as_str().unwrap();
        assert!(why.starts_with(&format!("{at} carries")), "{why}");
        assert_eq!(ex["build"], "native");
        assert_eq!(ex["selected_by"]["source"], "per_route", "{path}");
        assert_eq!(ex["decision"], "forwarded", "{path}");
        assert_eq!(header(&ex, "access-control-allow-origin"), Some(origin));
        // The less specific levels' origins are not allowed there.
        let other = native_get(NATIVE_YAML, path, "https://table.example");
        assert_eq!(other["decision"], "refused", "{path}");
    }
    let y = file("native.yaml", NATIVE_YAML).display().to_string();
    let ex = json(&[
        &y,
        "--host",
        "elsewhere.example",
        "--path",
        "/x",
        "--origin",
        "https://table.example",
    ]);
    assert_eq!(ex["route"], "elsewhere");
    assert_eq!(ex["selected_by"]["source"], "per_route");
    assert!(ex["selected_by"]["why"]
        .as_str()
        .unwrap()
        .starts_with("the route configuration carries"));
    assert_eq!(ex["decision"], "forwarded");
    assert!(ex["config"]
        .as_str()
        .unwrap()
        .contains("native filter \"cors\""));
}

#[test]
fn a_null_per_route_configuration_turns_cors_off_and_an_empty_one_inherits() {
    let ex = native_get(NATIVE_YAML, "/off", "https://app.example");
    assert_eq!(ex["selected_by"]["source"], "per_route");
    assert_eq!(ex["decision"], "passed_through");
    assert_eq!(ex["policy"], Value::Null);
    // `{}` on the route: the filter-level `policy`, not the virtual host's entry.
    let ex = native_get(NATIVE_YAML, "/inherit", "https://app.example");
    assert_eq!(ex["selected_by"]["source"], "default");
    assert_eq!(ex["policy"], "policy");
    assert_eq!(ex["decision"], "forwarded");
    let ex = native_get(NATIVE_YAML, "/inherit", "https://vhost.example");
    assert_eq!(ex["decision"], "refused");
}

#[test]
fn check_refuses_a_bad_per_route_configuration_with_its_path() {
    let bad = NATIVE_YAML.replace(
        r#"value: {allow_origins: ["https://vhost.example"]}"#,
        r#"value: {allow_origins: ["https://vhost.example", "vhost.example"]}"#,
    );
    assert_ne!(bad, NATIVE_YAML);
    let b = file("native-bad.yaml", &bad);
    let out = run(&["--check", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "invalid per-route configuration of virtual host \"api\" (entry \"cors\"): \
         typed_per_filter_config.allow_origins[1]: \"vhost.example\" is not an origin (expected scheme://host[:port], \"*\" or \"null\")\n"
    );
    // Explaining a request under it fails the same way: Envoy would not load it.
    let out = run(&[b.to_str().unwrap(), "--origin", "https://app.example"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&[
        "--check",
        file("native-ok.yaml", NATIVE_YAML).to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_native_build_names_its_counters() {
    let ex = native_get(NATIVE_YAML, "/plain", "https://vhost.example");
    assert_eq!(ex["counter"], "dynamicmodulescustom.cors.actual.allowed");
    let ex = native_get(NATIVE_YAML, "/plain", "https://evil.example");
    assert_eq!(
        ex["counter"],
        "dynamicmodulescustom.cors.actual.denied_origin"
    );
    let ex = json(&[&config(), "--origin", "https://app.example"]);
    assert_eq!(ex["build"], "wasm");
    assert_eq!(ex["counter"], "wasmcustom.cors.actual.allowed");
}

/// A REST path split by method (GET, PUT, DELETE), each route with its own per-route policy,
/// and a route for the other methods (OPTIONS) without one, in the native build.
const REST_YAML: &str = r#"
static_resources:
  listeners:
  - name: rest
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: rest
          route_config:
            virtual_hosts:
            - name: api
              domains: ["*"]
              routes:
              - name: items-get
                match: { prefix: /api/items, headers: [{ name: ":method", string_match: { exact: GET } }] }
                route: {cluster: upstream}
                typed_per_filter_config:
                  cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                    dynamic_module_config: {name: cors}
                    filter_name: cors
                    filter_config:
                      "@type": type.googleapis.com/google.protobuf.Struct
                      value: {allow_origins: ["https://app.example"], allow_methods: GET, max_age: 60}
              - name: items-put
                match: { prefix: /api/items, headers: [{ name: ":method", string_match: { exact: PUT } }] }
                route: {cluster: upstream}
                typed_per_filter_config:
                  cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                    dynamic_module_config: {name: cors}
                    filter_name: cors
                    filter_config:
                      "@type": type.googleapis.com/google.protobuf.Struct
                      value: {allow_origins: ["https://app.example"], allow_methods: PUT, max_age: 60}
              - name: items-delete
                match: { prefix: /api/items, headers: [{ name: ":method", string_match: { exact: DELETE } }] }
                route: {cluster: upstream}
                typed_per_filter_config:
                  cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute
                    dynamic_module_config: {name: cors}
                    filter_name: cors
                    filter_config:
                      "@type": type.googleapis.com/google.protobuf.Struct
                      value: {allow_origins: ["https://app.example"], allow_methods: DELETE, max_age: 60}
              - name: items-other
                match: {prefix: /api/items}
                route: {cluster: upstream}
          http_filters:
          - name: cors
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
              dynamic_module_config: {name: cors}
              filter_name: cors
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"#;

#[test]
fn the_native_build_judges_a_preflight_by_its_actual_requests_route() {
    let y = file("rest.yaml", REST_YAML).display().to_string();
    let args = [
        y.as_str(),
        "--path",
        "/api/items",
        "--origin",
        "https://app.example",
        "--request-method",
        "PUT",
    ];
    let ex = json(&args);
    assert_eq!(ex["build"], "native");
    assert_eq!(ex["route"], "items-put");
    assert_eq!(ex["selected_by"]["source"], "per_route");
    assert_eq!(ex["decision"], "answered_preflight");
    assert_eq!(header(&ex, "access-control-allow-methods"), Some("PUT"));
    assert_eq!(ex["then"]["route"], "items-put");
    assert_eq!(ex["then"]["decision"], "forwarded");
    // The Wasm build, judging by the OPTIONS request's own route, finds no policy.
    assert_eq!(ex["other_build"]["build"], "wasm");
    assert_eq!(ex["other_build"]["decision"], "passed_through");
    assert!(ex["other_build"]["by"]
        .as_str()
        .unwrap()
        .starts_with("route \"items-other\""));
    let out = run(&args);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("Other     the Wasm build judges it by route \"items-other\""),
        "{shown}"
    );
    assert!(
        shown.contains("the native build judges the preflight by route \"items-put\""),
        "{shown}"
    );
    let delete = json(&[
        y.as_str(),
        "--path",
        "/api/items",
        "--origin",
        "https://app.example",
        "--request-method",
        "DELETE",
    ]);
    assert_eq!(delete["route"], "items-delete");
    assert_eq!(
        header(&delete, "access-control-allow-methods"),
        Some("DELETE")
    );
}

/// The repository root, for the shipped configurations.
fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

#[test]
fn check_names_routes_and_virtual_hosts_keys_that_name_nothing_with_the_closest_name() {
    let misspelt = ENVOY_YAML
        .replace(
            "routes: {items: {allow_origins",
            "routes: {itmes: {allow_origins",
        )
        .replace(
            "route_metadata_namespace: cors",
            "route_metadata_namespace: cors\n                    virtual_hosts: {apis: null}",
        );
    assert_ne!(misspelt, ENVOY_YAML);
    let y = file("misspelt.yaml", &misspelt);
    let out = run(&["--check", y.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("routes[\"itmes\"]: no route of this name in the route table (the closest is \"items\"): its policy never applies"), "{err}");
    assert!(err.contains("virtual_hosts[\"apis\"]: no virtual host of this name in the route table (the closest is \"api\")"), "{err}");
    let good = file("good.yaml", ENVOY_YAML);
    assert!(run(&["--check", good.to_str().unwrap()]).status.success());
}

#[test]
fn every_shipped_configuration_checks_valid_without_warnings() {
    for path in [
        "envoy/demo.yaml",
        "envoy/native.yaml",
        "envoy/per-route.yaml",
        "envoy/string-value.yaml",
        "envoy/skip-without-origin.yaml",
        "deploy/istio/wasmplugin.yaml",
        "deploy/envoy-gateway/envoyextensionpolicy.yaml",
        "deploy/envoy-gateway/envoyextensionpolicy-http.yaml",
        "deploy/envoy-gateway/envoyextensionpolicy-native.yaml",
    ] {
        let out = run(&["--check", &repo(path)]);
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn envoy_gateway_extension_policies_are_read_for_their_build() {
    let native = json(&[
        &repo("deploy/envoy-gateway/envoyextensionpolicy-native.yaml"),
        "--origin",
        "https://app.example.com",
    ]);
    assert_eq!(native["build"], "native");
    assert_eq!(native["decision"], "forwarded");
    assert!(native["counter"]
        .as_str()
        .unwrap()
        .starts_with("dynamicmodulescustom."));
    let wasm = json(&[
        &repo("deploy/envoy-gateway/envoyextensionpolicy.yaml"),
        "--origin",
        "https://app.example.com",
    ]);
    assert_eq!(wasm["build"], "wasm");
    let other = run(&[
        "--check",
        &repo("deploy/envoy-gateway/envoyproxy-native.yaml"),
    ]);
    assert!(String::from_utf8_lossy(&other.stderr)
        .contains("a Kubernetes EnvoyProxy (gateway.envoyproxy.io/v1alpha1): cors-explain reads"));
}

#[test]
fn every_refused_request_header_is_named() {
    let c = config();
    let ex = json(&[
        &c,
        "--origin",
        "https://app.example",
        "--request-method",
        "PUT",
        "--request-headers",
        "x-a, content-type, X-B",
    ]);
    assert_eq!(ex["refusal"], "headers");
    let notes = ex["notes"].to_string();
    assert!(
        notes.contains("every requested header not in policy.allow_headers: x-a, x-b"),
        "{notes}"
    );
}

#[test]
fn a_filter_before_ours_that_answers_is_what_the_preflight_gets() {
    let jwt = ENVOY_YAML.replace(
        "          http_filters:\n",
        "          http_filters:\n          - name: envoy.filters.http.jwt_authn\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication\n              providers: {p: {issuer: x, local_jwks: {inline_string: \"{}\"}}}\n              rules: [{match: {prefix: /}, requires: {provider_name: p}}]\n",
    );
    assert_ne!(jwt, ENVOY_YAML);
    let y = file("jwt.yaml", &jwt).display().to_string();
    let args = [
        y.as_str(),
        "--host",
        "api.example.com",
        "--path",
        "/x",
        "--origin",
        "https://items.example",
        "--request-method",
        "PUT",
    ];
    let ex = json(&args);
    assert_eq!(ex["decision"], "answered_by_earlier_filter");
    assert_eq!(ex["answered_by"], "envoy.filters.http.jwt_authn");
    assert_eq!(ex["status"], 401);
    assert_eq!(ex["browser"]["without_credentials"]["allowed"], false);
    let out = run(&["--check", &y]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "warning: envoy.filters.http.jwt_authn (JwtAuthentication) is placed before the CORS filter in listener \"main\": it answers preflights itself (401)"
    ));
}

#[test]
fn stat_prefix_is_in_the_counter_named() {
    let c = file(
        "prefixed.json",
        r#"{"stat_prefix": "public", "policy": {"allow_origins": ["*"]}}"#,
    );
    let ex = json(&[c.to_str().unwrap(), "--origin", "https://a.example"]);
    assert_eq!(ex["counter"], "wasmcustom.public.cors.actual.allowed");
}

#[test]
fn the_readme_example_loads_without_warnings() {
    // The http_filters fragment under "The policy goes into the Wasm filter's plugin
    // `configuration`": complete policies, so the no-merge warning must stay silent.
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let after = readme
        .split("The policy goes into the Wasm filter's plugin")
        .nth(1)
        .unwrap();
    let yaml = after
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert!(yaml.contains("partners:"), "{yaml}");
    let f = file("readme.yaml", yaml);
    let out = run(&["--check", f.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let narrower = yaml.replace("              allow_methods: GET, POST, PUT\n              allow_headers: [content-type, authorization]\n", "");
    assert_ne!(narrower, yaml);
    let f = file("readme-narrower.yaml", &narrower);
    let out = run(&["--check", f.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "warning: virtual_hosts.partners: allows origins but no method beyond GET, HEAD and POST"
    ));
}
