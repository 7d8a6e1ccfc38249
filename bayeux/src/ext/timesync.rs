//! The timesync extension: the client sends `ext.timesync = {tc, l, o}` on
//! handshake and connect; the reply carries `{tc, ts, p, a}` (client time
//! echoed, server time, server processing time, and the accuracy of the
//! client's current offset), from which the client estimates clock offset.

use serde_json::{json, Value};

use super::Extension;
use crate::channel::{META_CONNECT, META_HANDSHAKE};
use crate::clock::wall_ms;
use crate::message::{Incoming, Reply};
use crate::session::Session;

pub struct Timesync;

impl Extension for Timesync {
    fn outgoing_reply(
        &self,
        _session: Option<&Session>,
        request: &Incoming,
        reply: &mut Reply<'_>,
    ) {
        if !matches!(reply.channel, Some(META_HANDSHAKE | META_CONNECT)) {
            return;
        }
        let Some(ext) = request.ext_object() else {
            return;
        };
        let Some(Value::Object(sync)) = ext.get("timesync") else {
            return;
        };
        let Some(tc) = sync.get("tc").and_then(Value::as_i64) else {
            return;
        };
        let lag = sync.get("l").and_then(Value::as_i64).unwrap_or(0);
        let offset = sync.get("o").and_then(Value::as_i64).unwrap_or(0);
        // `ts` is when the request arrived and `p` how long the server kept
        // it (a whole held period for a connect), so the client can take the
        // hold out of its lag estimate.
        let ts = request.received_at;
        let p = (wall_ms() - ts).max(0);
        reply.ext.insert(
            "timesync".to_owned(),
            json!({ "tc": tc, "ts": ts, "p": p, "a": tc + offset + lag - ts }),
        );
    }
}
