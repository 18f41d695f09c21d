//! Command line of `cors-explain` (parsed with lexopt), and its three modes: one request,
//! JSON lines, `--check`.

use crate::chain::{ChainRequest, Effect};
use crate::explain::explain;
use crate::input::Input;
use crate::source::{load, Build, LoadError, Loaded};
use serde_json::Value;
use std::ffi::OsString;
use std::io::{BufRead, Write};

const USAGE: &str = "\
cors-explain: what the CORS filter does with a request, and why

usage:
  cors-explain CONFIG [request options] [--json]
  cors-explain CONFIG --requests FILE      (JSON lines in, JSON lines out; FILE - is stdin)
  cors-explain --check CONFIG              (validate only: exit 0 valid, 1 invalid)
  cors-explain --version

CONFIG is a plugin configuration (JSON), or an Envoy config (YAML or JSON) from which the
configuration of our filter is taken (a Struct or a StringValue): the Wasm build's `Wasm`
filter, or the native build's `DynamicModuleFilter` (module cors) with its per-route
configurations; or an Istio WasmPlugin, or an Envoy Gateway EnvoyExtensionPolicy (its wasm
or dynamicModule entry). The build's rules apply; a plugin configuration alone is explained as
the Wasm build. In an Envoy config, the HTTP filters placed before ours are modelled: one that
answers the request (jwt_authn's 401 to a preflight) is what the browser gets, and --check
warns about each that can answer a preflight.

request options:
  --method M               request method (default OPTIONS with --request-method, else GET)
  --origin O               the Origin header (without it the filter does nothing)
  --request-method M       Access-Control-Request-Method (makes an OPTIONS a preflight)
  --request-headers H      Access-Control-Request-Headers, e.g. 'content-type, authorization'
  --private-network        Access-Control-Request-Private-Network: true
  --route NAME             the route name Envoy gives the filter (xds.route_name)
  --vhost NAME             the virtual host name (xds.virtual_host_name)
  --path PATH [--host H]   match PATH and Host against the Envoy config's routes instead
  --listener NAME          the listener, when the Envoy config has several of our filters
  --upstream-header 'N: V' a header of the upstream's response (repeatable)
  --upstream-status N      the upstream's status (default 200)
  --json                   JSON output
";

/// The value of the option just read.
fn value(parser: &mut lexopt::Parser) -> Result<String, String> {
    use lexopt::ValueExt;
    parser
        .value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|e| e.to_string())
}

/// Exit codes: 0 done, 1 invalid configuration, 2 bad usage or input.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    match parse(args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            0
        }
        Ok(Command::Version) => {
            // The workspace version, which `make dist` also stamps into dist/VERSION and the
            // images' annotations.
            println!("cors-explain {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::Check(path)) => check(&path),
        Ok(Command::Explain {
            config,
            listener,
            input,
            json,
        }) => with_config(&config, listener.as_deref(), |loaded| {
            single(loaded, &input, json)
        }),
        Ok(Command::Batch {
            config,
            listener,
            requests,
        }) => with_config(&config, listener.as_deref(), |loaded| {
            batch(loaded, &requests)
        }),
        Err(e) => {
            eprintln!("cors-explain: {e}\n\n{USAGE}");
            2
        }
    }
}

enum Command {
    Help,
    Version,
    Check(String),
    Explain {
        config: String,
        listener: Option<String>,
        input: Box<Input>,
        json: bool,
    },
    Batch {
        config: String,
        listener: Option<String>,
        requests: String,
    },
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut input = Input::default();
    let mut config = None;
    let mut check = None;
    let mut listener = None;
    let mut requests = None;
    let mut json = false;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("json") => json = true,
            Long("private-network") => input.private_network = true,
            Long("check") => check = Some(value(&mut parser)?),
            Long("method") => input.method = Some(value(&mut parser)?),
            Long("origin") => input.origin = Some(value(&mut parser)?),
            Long("request-method") => input.request_method = Some(value(&mut parser)?),
            Long("request-headers") => input.request_headers = Some(value(&mut parser)?),
            Long("route") => input.route = Some(value(&mut parser)?),
            Long("vhost") => input.vhost = Some(value(&mut parser)?),
            Long("path") => input.path = Some(value(&mut parser)?),
            Long("host") => input.host = Some(value(&mut parser)?),
            Long("listener") => listener = Some(value(&mut parser)?),
            Long("requests") => requests = Some(value(&mut parser)?),
            Long("upstream-status") => {
                let v = value(&mut parser)?;
                input.upstream_status = Some(
                    v.parse()
                        .map_err(|_| format!("--upstream-status {v:?} is not a status code"))?,
                );
            }
            Long("upstream-header") => {
                let v = value(&mut parser)?;
                let (n, val) = v
                    .split_once(':')
                    .ok_or(format!("--upstream-header {v:?}: expected 'name: value'"))?;
                input
                    .upstream_headers
                    .push((n.trim().to_ascii_lowercase(), val.trim().to_owned()));
            }
            Value(positional) => {
                let positional = positional.string().map_err(|e| e.to_string())?;
                if config.is_some() {
                    return Err(format!("unexpected argument {positional:?}"));
                }
                config = Some(positional);
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    if let Some(path) = check {
        if config.is_some() {
            return Err("--check takes only the configuration".into());
        }
        return Ok(Command::Check(path));
    }
    let config = config.ok_or("no configuration file given")?;
    if let Some(requests) = requests {
        return Ok(Command::Batch {
            config,
            listener,
            requests,
        });
    }
    Ok(Command::Explain {
        config,
        listener,
        input: Box::new(input),
        json,
    })
}

fn with_config(path: &str, listener: Option<&str>, f: impl FnOnce(&Loaded) -> i32) -> i32 {
    match load(path, listener) {
        Ok(loaded) => {
            for w in &loaded.config.warnings {
                eprintln!("warning: {w}");
            }
            f(&loaded)
        }
        Err(e @ (LoadError::Config(_) | LoadError::Refused(_))) => {
            eprintln!("{e}");
            1
        }
        Err(e) => {
            eprintln!("cors-explain: {e}");
            2
        }
    }
}

/// `--check`: the filter's verdict at load, plus policies in route metadata (which the filter
/// checks only when a request reaches the route, turning CORS off there if they are invalid).
fn check(path: &str) -> i32 {
    match load(path, None) {
        Ok(loaded) => {
            for w in loaded
                .config
                .warnings
                .iter()
                .chain(&chain_warnings(&loaded))
            {
                eprintln!("warning: {w}");
            }
            let mut bad = 0;
            if let Some(routes) = &loaded.routes {
                let errors = routes
                    .invalid_metadata_policies(&loaded.config)
                    .into_iter()
                    .chain(routes.unknown_names(&loaded.config));
                for e in errors {
                    eprintln!("{e}");
                    bad += 1;
                }
            }
            if bad == 0 {
                println!("{}: valid", loaded.source);
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// `--check`: the filters placed before ours that answer, or may answer, a preflight.
fn chain_warnings(loaded: &Loaded) -> Vec<String> {
    let preflight = ChainRequest {
        method: "OPTIONS",
        preflight: true,
        path: None,
        per_filter: None,
    };
    let listener = loaded
        .listener
        .as_deref()
        .map_or(String::new(), |l| format!(" in listener {l:?}"));
    let replies = match loaded.build {
        Build::Wasm => {
            "its replies to actual requests carry no CORS header (the Wasm build never sees them)"
        }
        Build::Native => "the native build adds CORS headers to its replies to actual requests",
    };
    loaded
        .chain
        .iter()
        .filter_map(|e| {
            let effect = e.effect(&preflight);
            let does = match &effect {
                Effect::Passes(_) => return None,
                Effect::Answers(s, _) | Effect::AnswersWithoutCredentials(s, _) => {
                    format!("answers preflights itself ({s})")
                }
                Effect::MayAnswer(Some(s), _) => format!("may answer preflights itself ({s})"),
                Effect::MayAnswer(None, _) => "may answer preflights itself".to_owned(),
            };
            Some(format!(
                "{} ({}) is placed before the CORS filter{listener}: it {does}: {}. A preflight it \
                 answers never reaches the CORS filter and fails in the browser; {replies}. Put \
                 the CORS filter first (docs/troubleshooting.md)",
                e.name,
                e.type_name,
                effect.why()
            ))
        })
        .collect()
}

fn single(loaded: &Loaded, input: &Input, json: bool) -> i32 {
    match explain(loaded, input) {
        Ok(ex) if json => {
            println!("{}", ex.to_json(&loaded.source));
            0
        }
        Ok(ex) => {
            print!("{}", ex.render(&loaded.source));
            0
        }
        Err(e) => {
            eprintln!("cors-explain: {e}");
            2
        }
    }
}

fn batch(loaded: &Loaded, path: &str) -> i32 {
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(path) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("cors-explain: cannot read {path}: {e}");
                return 2;
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut status = 0;
    for (n, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cors-explain: {path}: {e}");
                return 2;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let result = serde_json::from_str::<Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                let ex = explain(loaded, &Input::from_json(&v)?)?;
                let mut j = ex.to_json(&loaded.source);
                if let (Some(id), Some(o)) = (v.get("id"), j.as_object_mut()) {
                    o.insert("id".into(), id.clone());
                }
                Ok(j)
            });
        let j = result.unwrap_or_else(|e| {
            status = 2;
            serde_json::json!({"error": format!("line {}: {e}", n + 1)})
        });
        if writeln!(out, "{j}").is_err() {
            return 2;
        }
    }
    if out.flush().is_err() {
        return 2;
    }
    status
}
