//! The floor of any proxy-wasm CORS filter on this machine: one host call to read `Origin`
//! (none more when it is absent), one for `:method`, a fixed reply to every OPTIONS, and four
//! fixed header writes on the response of every other request with `Origin`. No policy, no
//! allocation beyond what the SDK does.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(FloorRoot));
}}

struct FloorRoot;

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Floor { decorate: false }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Floor {
    decorate: bool,
}

impl Context for Floor {}

const PREFLIGHT: [(&str, &str); 5] = [
    ("access-control-allow-origin", "https://app.example.com"),
    ("access-control-allow-methods", "GET, POST, PUT"),
    ("access-control-allow-headers", "content-type, x-requested-with"),
    ("access-control-max-age", "600"),
    ("vary", "Origin"),
];

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.get_http_request_header_bytes("origin").is_none() {
            return Action::Continue;
        }
        let method = self.get_http_request_header_bytes(":method");
        if method.as_deref() == Some(b"OPTIONS") {
            self.send_http_response(200, PREFLIGHT.to_vec(), None);
            return Action::Pause;
        }
        self.decorate = true;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if self.decorate {
            self.set_http_response_header("access-control-allow-origin", Some("https://app.example.com"));
            self.set_http_response_header("access-control-allow-credentials", Some("true"));
            self.set_http_response_header("access-control-expose-headers", Some("x-total"));
            self.set_http_response_header("vary", Some("Origin"));
        }
        Action::Continue
    }
}
