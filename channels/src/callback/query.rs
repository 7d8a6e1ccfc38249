//! Reading callbacks in bulk: the query by properties (with `!` negation),
//! availability per time bucket, and the admin views (queues, watermarks,
//! bulk cancel, export of cancelled callbacks).

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use super::engine::{CallbackError, Callbacks, BY_ADMIN, MAX_READ};
use super::model::{iso, Callback, State, STATES};
use super::options::resolve;
use crate::store::{check_key, now_ms};

type Result<T> = std::result::Result<T, CallbackError>;

/// The value a filter compares: the record's own fields first, then the
/// request's properties.
fn field(id: &str, cb: &Callback, key: &str) -> Option<String> {
    Some(match key {
        "_id" => id.to_owned(),
        "_service_name" => cb.service.clone(),
        "_callback_state" => cb.state.name().to_owned(),
        "_callback_reason" => cb.reason.clone()?,
        "_customer_number" => cb.customer_number.clone(),
        "_desired_time" => iso(cb.desired_time),
        _ => cb.properties.get(key)?.clone(),
    })
}

/// One `key=value` (or `key=!value`) of a query.
struct Filter {
    key: String,
    value: String,
    negated: bool,
}

impl Filter {
    fn matches(&self, id: &str, cb: &Callback) -> bool {
        let v = field(id, cb, &self.key);
        let equal = v.as_deref() == Some(self.value.as_str());
        equal != self.negated
    }
}

impl Callbacks {
    /// `GET /genesys/1/service/callback?k=v...`: the callbacks matching every
    /// filter, as GMS records. Unless `back_office` asks, a query must name
    /// its customer (`_id`, `_customer_number` or a `_customer_lookup_keys`
    /// key, not negated): a customer finds their own callbacks, not every
    /// customer's.
    pub async fn query(
        &self,
        params: &[(String, String)],
        back_office: bool,
    ) -> Result<Vec<Value>> {
        let settings = self.settings();
        let mut filters = Vec::new();
        let mut max = MAX_READ;
        for (key, value) in params {
            if key == "max" {
                max = value
                    .parse::<usize>()
                    .map_err(|_| CallbackError::BadRequest("max must be a number".into()))?
                    .clamp(1, MAX_READ);
                continue;
            }
            let lookup = ["_id", "_service_name", "_customer_number"].contains(&key.as_str())
                || settings.filter_keys.contains(key)
                || self.lookup_keys().contains(key.as_str());
            if !lookup {
                return Err(CallbackError::BadRequest(format!(
                    "{key} is not a filter key ([callback] filter-keys)"
                )));
            }
            let (negated, value) = match value.strip_prefix('!') {
                Some(v) => (true, v),
                None => (false, value.as_str()),
            };
            filters.push(Filter {
                key: key.clone(),
                value: value.to_owned(),
                negated,
            });
        }
        if filters.is_empty() {
            return Err(CallbackError::BadRequest(
                "give at least one filter (_id, _customer_number, _service_name, ...)".into(),
            ));
        }
        let lookup_keys = self.lookup_keys();
        let names_customer = |f: &Filter| {
            !f.negated
                && (f.key == "_id"
                    || f.key == "_customer_number"
                    || lookup_keys.contains(f.key.as_str()))
        };
        if !back_office && !filters.iter().any(names_customer) {
            return Err(CallbackError::Forbidden(
                "name the customer (_id, _customer_number or a _customer_lookup_keys key); \
                 other queries are the back office's ([admin] credentials or admin-networks)"
                    .into(),
            ));
        }
        let candidates = self.candidates(&filters).await?;
        let mut out: Vec<(u64, Value)> = candidates
            .into_iter()
            .filter(|(id, cb)| filters.iter().all(|f| f.matches(id, cb)))
            .map(|(id, cb)| {
                let url = self.urls().record(&cb.service, &id);
                (
                    cb.desired_time,
                    Value::Object(cb.view(&id, &url, &settings.returned_keys)),
                )
            })
            .collect();
        out.sort_by_key(|(t, _)| *t);
        Ok(out.into_iter().take(max).map(|(_, v)| v).collect())
    }

    /// `_customer_lookup_keys` of every service: what a customer may be
    /// found by besides the number.
    fn lookup_keys(&self) -> HashSet<&str> {
        self.settings()
            .services
            .values()
            .filter_map(|o| o.get("_customer_lookup_keys"))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect()
    }

    /// The smallest set the store can find that holds every match.
    async fn candidates(&self, filters: &[Filter]) -> Result<Vec<(String, Callback)>> {
        let positive = |key: &str| {
            filters
                .iter()
                .find(|f| f.key == key && !f.negated)
                .map(|f| f.value.as_str())
        };
        let records = self.records();
        let found = |v: Vec<(String, crate::store::collection::Versioned<Callback>)>| {
            v.into_iter().map(|(id, v)| (id, v.value)).collect()
        };
        if let Some(id) = positive("_id") {
            if check_key("id", id).is_err() {
                return Ok(Vec::new());
            }
            return Ok(records
                .get(id)
                .await?
                .map(|v| vec![(id.to_owned(), v.value)])
                .unwrap_or_default());
        }
        if let Some(number) = positive("_customer_number") {
            if check_key("number", number).is_err() {
                return Ok(Vec::new());
            }
            return Ok(found(records.find("number", number, MAX_READ).await?));
        }
        let services: Vec<String> = match positive("_service_name") {
            Some(s) => vec![s.to_owned()],
            None => self.service_names().map(str::to_owned).collect(),
        };
        let mut out = Vec::new();
        for service in services {
            if check_key("service", &service).is_err() {
                continue;
            }
            let batch = match positive("_callback_state").and_then(State::parse) {
                Some(state) => self.in_state(&service, state).await?,
                None => found(records.find("service", &service, MAX_READ).await?),
            };
            out.extend(batch);
        }
        Ok(out)
    }

    /// Free places per time bucket of a service, from `start` (default now)
    /// to `end` (default a day later), for the buckets its office is open.
    pub async fn availability(
        &self,
        service: &str,
        start: Option<u64>,
        end: Option<u64>,
        max_slots: Option<usize>,
    ) -> Result<Map<String, Value>> {
        let raw = self
            .settings()
            .services
            .get(service)
            .ok_or_else(|| CallbackError::UnknownService(service.to_owned()))?;
        let options = resolve(raw, &BTreeMap::new(), self.settings());
        let bucket = options.bucket.as_millis() as u64;
        let now = now_ms();
        let start = start.unwrap_or(now).max(now);
        let first = start.div_ceil(bucket) * bucket;
        let end = end.unwrap_or(start + 24 * 3600 * 1000);
        if end <= start {
            return Err(CallbackError::BadRequest("end is before start".into()));
        }
        let max_slots = max_slots.unwrap_or(2016).clamp(1, 2016);
        let hours = options
            .business_hours
            .as_ref()
            .map(|name| {
                self.settings().office_hours.get(name).ok_or_else(|| {
                    CallbackError::BadRequest(format!(
                        "office hours service {name} is not configured"
                    ))
                })
            })
            .transpose()?;
        let store = self.records().store();
        let mut out = Map::new();
        let mut slot = first;
        while slot < end && out.len() < max_slots {
            if hours.is_none_or(|h| h.is_open(slot)) {
                let taken = store
                    .count("callback", "slot", &format!("{service}:{slot}"))
                    .await?;
                out.insert(
                    iso(slot),
                    json!(options.max_per_bucket.saturating_sub(taken)),
                );
            }
            slot += bucket;
        }
        Ok(out)
    }

    /// `GET /genesys/1/admin/callback/queues`: the callbacks of each service
    /// whose desired time is in the window, in the given states.
    pub async fn admin_queues(
        &self,
        target: Option<&str>,
        window: (u64, u64),
        states: Option<Vec<State>>,
        max: usize,
    ) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        let services: Vec<String> = match target {
            Some(t) => vec![t.to_owned()],
            None => self.service_names().map(str::to_owned).collect(),
        };
        for service in services {
            if !self.settings().services.contains_key(&service) {
                return Err(CallbackError::UnknownService(service));
            }
            let mut list: Vec<(String, Callback)> = Vec::new();
            for state in states.clone().unwrap_or_else(|| STATES.to_vec()) {
                list.extend(self.in_state(&service, state).await?);
            }
            list.retain(|(_, cb)| cb.desired_time >= window.0 && cb.desired_time <= window.1);
            list.sort_by_key(|(_, cb)| cb.desired_time);
            let records: Vec<Value> = list
                .into_iter()
                .take(max)
                .map(|(id, cb)| {
                    Value::Object(cb.full_view(&id, &self.urls().record(&service, &id)))
                })
                .collect();
            out.insert(service, Value::Array(records));
        }
        Ok(out)
    }

    /// `GET /genesys/1/admin/callback/watermarks`: callbacks per state, and
    /// how full each service is against its limit.
    pub async fn watermarks(&self, service: Option<&str>) -> Result<Map<String, Value>> {
        let store = self.records().store();
        let services: Vec<String> = match service {
            Some(s) if self.settings().services.contains_key(s) => vec![s.to_owned()],
            Some(s) => return Err(CallbackError::UnknownService(s.to_owned())),
            None => self.service_names().map(str::to_owned).collect(),
        };
        let mut out = Map::new();
        for service in services {
            let options = resolve(
                &self.settings().services[&service],
                &BTreeMap::new(),
                self.settings(),
            );
            let mut entry = Map::new();
            for state in STATES.into_iter().filter(|s| !s.is_final()) {
                let n = store
                    .count(
                        "callback",
                        "svcstate",
                        &format!("{service}:{}", state.name()),
                    )
                    .await?;
                entry.insert(state.name().to_owned(), json!(n));
            }
            let open = store.count("callback", "open", &service).await?;
            entry.insert("open".into(), json!(open));
            entry.insert("max_queued".into(), json!(options.max_queued));
            entry.insert(
                "watermark".into(),
                json!(open * 100 / options.max_queued.max(1)),
            );
            out.insert(service, Value::Object(entry));
        }
        Ok(out)
    }

    /// `POST /genesys/1/admin/callback/cancel`: cancels each callback that is
    /// not completed; says which could not be.
    pub async fn bulk_cancel(&self, ids: &[String], reason: &str) -> Value {
        let mut cancelled = Vec::new();
        let mut failed = Map::new();
        for id in ids {
            match self
                .move_to(id, State::Completed, Some(reason.to_owned()), BY_ADMIN)
                .await
            {
                Ok(_) => cancelled.push(id.clone()),
                Err(e) => {
                    failed.insert(id.clone(), json!(e.to_string()));
                }
            }
        }
        json!({"cancelled": cancelled, "failed": failed})
    }

    /// `POST /genesys/1/admin/callback/reportcancelled`: the completed
    /// callbacks with a reason, as CSV with the chosen properties.
    pub async fn export_completed(&self, reason: &str, properties: &[String]) -> Result<String> {
        let mut columns = vec!["_id".to_owned(), "_service_name".to_owned()];
        for p in properties {
            if !columns.contains(p) {
                columns.push(p.clone());
            }
        }
        let mut out = columns.join(",");
        out.push('\n');
        for service in self.service_names().map(str::to_owned).collect::<Vec<_>>() {
            let key = format!("{service}:{reason}");
            if check_key("reason", &key).is_err() {
                continue;
            }
            let mut found = self.records().find("reason", &key, MAX_READ).await?;
            found.sort_by_key(|(_, v)| v.value.desired_time);
            for (id, v) in found {
                let row: Vec<String> = columns
                    .iter()
                    .map(|c| csv_field(&field(&id, &v.value, c).unwrap_or_default()))
                    .collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// A CSV field, quoted when it must be; what a spreadsheet would run as a
/// formula (`=...`, `@...`, a sign not followed by a number, and a tab or
/// carriage return before any of them: OWASP's list) is prefixed with
/// `'`. Phone numbers (`+1 650 ...`) stay as they are.
fn csv_field(v: &str) -> String {
    let number = |rest: &str| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '-' || c == '.')
    };
    let risky =
        v.starts_with(['=', '@', '\t', '\r']) || (v.starts_with(['+', '-']) && !number(&v[1..]));
    let v = if risky { format!("'{v}") } else { v.to_owned() };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(super::csv_field("plain"), "plain");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::csv_field("=1+1"), "'=1+1");
        assert_eq!(super::csv_field("+1 650 253 0000"), "+1 650 253 0000");
        assert_eq!(super::csv_field("+cmd"), "'+cmd");
        assert_eq!(super::csv_field("\t=cmd"), "'\t=cmd");
        assert_eq!(super::csv_field("\r=cmd"), "\"'\r=cmd\"");
    }
}
