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
        let p = wall_ms().saturating_sub(ts).max(0);
        // The client's numbers may be anything: saturate, never overflow.
        let a = tc
            .saturating_add(offset)
            .saturating_add(lag)
            .saturating_sub(ts);
        reply.ext.insert(
            "timesync".to_owned(),
            json!({ "tc": tc, "ts": ts, "p": p, "a": a }),
        );
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::message::parse_batch;
    use crate::message::Parsed;

    proptest! {
        /// Whatever numbers a client sends, the reply is made (saturated).
        #[test]
        fn any_client_numbers_make_a_reply(tc in any::<i64>(), l in any::<i64>(), o in any::<i64>()) {
            let body = format!(
                r#"{{"channel":"/meta/connect","ext":{{"timesync":{{"tc":{tc},"l":{l},"o":{o}}}}}}}"#
            );
            let Ok(mut batch) = parse_batch(body.as_bytes()) else { panic!("valid") };
            let Some(Parsed::Ok(request)) = batch.pop() else { panic!("one message") };
            let mut reply = Reply::new(Some(META_CONNECT), None);
            Timesync.outgoing_reply(None, &request, &mut reply);
            let sync = &reply.ext["timesync"];
            prop_assert_eq!(sync["tc"].as_i64(), Some(tc));
            prop_assert!(sync["a"].is_i64());
        }
    }
}
