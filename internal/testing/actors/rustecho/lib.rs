//! rustecho: a wasmCloud actor written in Rust against the wasmbus actor ABI
//! (docs/protocol.md §5) by hand, with plain std and no crates, built for
//! wasm32-unknown-unknown (no WASI). internal/host/rust_actor_test.go builds it with
//! Debian's rustc (`make tools` installs it, see mk/rust.mk) and checks that
//! the host runs it unmodified, the way it must run actors built with
//! wasmbus-rpc:
//!
//!   /usr/bin/rustc --edition 2021 --crate-type cdylib --target wasm32-unknown-unknown \
//!       -C opt-level=s -C panic=abort -o rustecho.wasm lib.rs
//!
//! Operations:
//!   Echo.Echo                the payload, unchanged
//!   HttpServer.HandleRequest HttpResponse {statusCode: 200, header: {}, body: <the request bytes>}
//!   Call.Host                payload "<namespace>\n<operation>\n<body>": __host_call with link
//!                            name "default"; the host's reply, or its __host_error text as a
//!                            guest error prefixed "host call failed: "
//!   Log.Console              __console_log of the payload; empty reply
//!   anything else            guest error "unsupported operation"

#[link(wasm_import_module = "wasmbus")]
extern "C" {
    fn __guest_request(op_ptr: *mut u8, ptr: *mut u8);
    fn __guest_response(ptr: *const u8, len: usize);
    fn __guest_error(ptr: *const u8, len: usize);
    fn __host_call(
        bd_ptr: *const u8,
        bd_len: usize,
        ns_ptr: *const u8,
        ns_len: usize,
        op_ptr: *const u8,
        op_len: usize,
        ptr: *const u8,
        len: usize,
    ) -> usize;
    fn __host_response_len() -> usize;
    fn __host_response(ptr: *mut u8);
    fn __host_error_len() -> usize;
    fn __host_error(ptr: *mut u8);
    fn __console_log(ptr: *const u8, len: usize);
}

/// The ABI version marker the host looks for.
#[no_mangle]
pub extern "C" fn __wasmbus_rpc_version() -> u32 {
    1
}

/// The host calls this with the lengths of the operation name and payload;
/// the actor provides buffers, has the host fill them, and answers with
/// __guest_response (returning 1) or __guest_error (returning 0).
#[no_mangle]
pub extern "C" fn __guest_call(op_len: i32, msg_len: i32) -> i32 {
    let mut op = vec![0u8; op_len as usize];
    let mut msg = vec![0u8; msg_len as usize];
    unsafe { __guest_request(op.as_mut_ptr(), msg.as_mut_ptr()) };
    match dispatch(&op, msg) {
        Ok(reply) => {
            unsafe { __guest_response(reply.as_ptr(), reply.len()) };
            1
        }
        Err(err) => {
            unsafe { __guest_error(err.as_ptr(), err.len()) };
            0
        }
    }
}

fn dispatch(op: &[u8], msg: Vec<u8>) -> Result<Vec<u8>, String> {
    match op {
        b"Echo.Echo" => Ok(msg),
        b"HttpServer.HandleRequest" => Ok(http_response(200, &msg)),
        b"Call.Host" => call_host(&msg),
        b"Log.Console" => {
            unsafe { __console_log(msg.as_ptr(), msg.len()) };
            Ok(Vec::new())
        }
        _ => Err(String::from("unsupported operation")),
    }
}

/// Splits "<namespace>\n<operation>\n<body>" and calls the host the way a
/// wasmbus-rpc guest does: anything but 1 is a failure whose text is read
/// with __host_error_len / __host_error.
fn call_host(msg: &[u8]) -> Result<Vec<u8>, String> {
    let mut parts = msg.splitn(3, |b| *b == b'\n');
    let (ns, op, body) = match (parts.next(), parts.next(), parts.next()) {
        (Some(ns), Some(op), Some(body)) => (ns, op, body),
        _ => return Err(String::from("Call.Host wants <namespace>\\n<operation>\\n<body>")),
    };
    let binding = b"default";
    let rc = unsafe {
        __host_call(
            binding.as_ptr(),
            binding.len(),
            ns.as_ptr(),
            ns.len(),
            op.as_ptr(),
            op.len(),
            body.as_ptr(),
            body.len(),
        )
    };
    if rc != 1 {
        let mut err = vec![0u8; unsafe { __host_error_len() }];
        unsafe { __host_error(err.as_mut_ptr()) };
        return Err(format!("host call failed: {}", String::from_utf8_lossy(&err)));
    }
    let mut reply = vec![0u8; unsafe { __host_response_len() }];
    unsafe { __host_response(reply.as_mut_ptr()) };
    Ok(reply)
}

/// HttpResponse as a msgpack map keyed by field name (docs/protocol.md §9):
/// fixmap of 3, statusCode as uint16, header as an empty fixmap, body as bin.
fn http_response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 40);
    out.push(0x83);
    fixstr(&mut out, "statusCode");
    out.push(0xcd);
    out.extend_from_slice(&status.to_be_bytes());
    fixstr(&mut out, "header");
    out.push(0x80);
    fixstr(&mut out, "body");
    let n = body.len();
    if n <= 0xff {
        out.push(0xc4);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn fixstr(out: &mut Vec<u8>, s: &str) {
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}
