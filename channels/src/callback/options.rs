//! Callback services and their options: each `service.<name>` section with
//! `_service = callback` is one, its options applied to every request the
//! way GMS applies them (configuration beats the request unless the option
//! is `_overwritable_options`; `$name$` is the request's `name`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use push::PushType;

use super::model::Direction;
use super::office_hours::OfficeHours;

/// The callback service that exists when none is configured.
pub const DEFAULT_SERVICE: &str = "default";

#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// Each service's own options, as configured.
    pub services: BTreeMap<String, HashMap<String, String>>,
    /// Office-hours services by name (`service.<name>` with
    /// `_service = office-hours`).
    pub office_hours: HashMap<String, OfficeHours>,
    /// `[callback] returned-keys`: properties a query returns besides the
    /// keys it always returns.
    pub returned_keys: Vec<String>,
    /// `[callback] filter-keys`: properties a query may filter on besides
    /// `_id`, `_service_name` and the customer lookup keys.
    pub filter_keys: Vec<String>,
    /// `[callback] max_queued_callbacks_per_service` (1000): callbacks a
    /// service may hold that are not completed.
    pub max_queued: u64,
    /// `[callback] scheduler-interval` (ms, 1000): how often each node looks
    /// for callbacks whose time has come.
    pub scheduler_interval: Duration,
    /// `[callback] scheduler-lookback` (s, 3600): how far back a starting
    /// node looks for callbacks that came due while no node ran.
    pub lookback: Duration,
    /// `[callback] completed-retention` (s, 7 days): how long a completed
    /// callback stays readable (for queries and the cancelled export).
    pub retention: Duration,
    /// `[server] external_url_base`, for each record's `_url`.
    pub external_url_base: Option<String>,
    /// `[callback] allowed-device-os`: the push types a booking may name as
    /// its `_device_os` (default: all but `httpcb` and `orscb`, whose device
    /// id is a URL or session the request would choose).
    pub allowed_device_os: Vec<PushType>,
    /// `[callback] booking-horizon` (s, 30 days): how far ahead a callback
    /// may be booked or rescheduled.
    pub horizon: Duration,
    /// `[callback] max-bookings-per-minute-per-address` (30): bookings one
    /// client address may make per minute (in bursts of as many).
    pub bookings_per_minute_per_address: u32,
}

/// The push types whose device id names a phone, a session or a configured
/// endpoint (not a URL).
pub const SAFE_DEVICE_OS: [PushType; 7] = [
    PushType::Comet,
    PushType::Ios,
    PushType::Fcm,
    PushType::Gcm,
    PushType::Android,
    PushType::Wns,
    PushType::Customhttp,
];

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            services: BTreeMap::from([(DEFAULT_SERVICE.to_owned(), HashMap::new())]),
            office_hours: HashMap::new(),
            returned_keys: split_list(
                "_desired_time,_callback_state,_callback_reason,_ors_session_id",
            ),
            filter_keys: split_list(
                "_callback_state,_callback_reason,_request_queue_time_stat,_request_ewt_service,_vq",
            ),
            max_queued: 1000,
            scheduler_interval: Duration::from_millis(1000),
            lookback: Duration::from_secs(3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            external_url_base: None,
            allowed_device_os: SAFE_DEVICE_OS.to_vec(),
            horizon: Duration::from_secs(30 * 24 * 3600),
            bookings_per_minute_per_address: 30,
        }
    }
}

pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

/// `_enable_in_queue_checking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InQueueCheck {
    Off,
    /// At most two waiting callbacks per number.
    On,
    /// At most one.
    Strict,
}

/// A request's parameters once the service's options are applied, and the
/// options read from them.
#[derive(Debug, Clone)]
pub struct Effective {
    pub params: BTreeMap<String, String>,
    /// `_request_time_bucket` (minutes: 5, 10, 15, 20, 30, 60 or 120; 5).
    pub bucket: Duration,
    /// `_max_request_by_time_bucket` (100): scheduled callbacks per bucket.
    pub max_per_bucket: u64,
    /// `_max_queued_callbacks_per_service` (the `[callback]` value).
    pub max_queued: u64,
    pub business_hours: Option<String>,
    /// `_enable_reject_out_of_office_hours` (false): refuse immediate
    /// callbacks while the office is closed.
    pub reject_out_of_hours: bool,
    /// `_disallow_premium_phone_numbers` (true).
    pub disallow_premium: bool,
    /// `_disallow_impossible_phone_numbers` (true).
    pub disallow_impossible: bool,
    /// `_default_country` (US): how numbers without `+` are read.
    pub default_country: String,
    pub in_queue: InQueueCheck,
    /// `_mandatory_customer_lookup_keys` (`_customer_number`).
    pub mandatory_keys: Vec<String>,
    /// `_ttl` (s, 86400): how long after its time a callback may wait.
    pub ttl: Duration,
    pub direction: Direction,
    pub media_type: String,
    pub wait_for_agent: bool,
    pub wait_for_user_confirm: bool,
    pub provider_name: String,
    /// `_access_number` (or `_route_point`): what a customer-originated
    /// voice callback dials.
    pub access_number: Option<String>,
    /// `_chat_service` (`customer-support`): the chat service a chat
    /// callback opens its chat in.
    pub chat_service: String,
}

fn flag(params: &BTreeMap<String, String>, name: &str, default: bool) -> bool {
    match params.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "true" || v == "1" || v == "yes" => true,
        Some(v) if v == "false" || v == "0" || v == "no" => false,
        _ => default,
    }
}

fn number(params: &BTreeMap<String, String>, names: &[&str], default: u64) -> u64 {
    names
        .iter()
        .find_map(|n| params.get(*n))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Applies a service's options to a request.
pub fn resolve(
    service: &HashMap<String, String>,
    request: &BTreeMap<String, String>,
    settings: &CallbackSettings,
) -> Effective {
    let overwritable = service
        .get("_overwritable_options")
        .map(|v| split_list(v))
        .unwrap_or_default();
    let mut params = request.clone();
    for (name, value) in service {
        if overwritable.contains(name) && request.contains_key(name) {
            continue;
        }
        params.insert(name.clone(), substitute(value, request));
    }
    let bucket = match number(&params, &["_request_time_bucket"], 5) {
        m @ (5 | 10 | 15 | 20 | 30 | 60 | 120) => m,
        _ => 5,
    };
    let direction = match params
        .get("_call_direction")
        .map(|s| s.to_ascii_uppercase())
    {
        Some(d) if d == "USERORIGINATED" => Direction::Useroriginated,
        _ => Direction::Userterminated,
    };
    let in_queue = match params
        .get("_enable_in_queue_checking")
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("false") => InQueueCheck::Off,
        Some("strict") => InQueueCheck::Strict,
        _ => InQueueCheck::On,
    };
    Effective {
        bucket: Duration::from_secs(bucket * 60),
        max_per_bucket: number(
            &params,
            &["_max_request_by_time_bucket", "max_request_by_time_bucket"],
            100,
        ),
        max_queued: number(
            &params,
            &["_max_queued_callbacks_per_service"],
            settings.max_queued,
        ),
        business_hours: params
            .get("_business_hours_service")
            .filter(|s| !s.is_empty())
            .cloned(),
        reject_out_of_hours: flag(&params, "_enable_reject_out_of_office_hours", false),
        disallow_premium: flag(&params, "_disallow_premium_phone_numbers", true),
        disallow_impossible: flag(&params, "_disallow_impossible_phone_numbers", true),
        default_country: params
            .get("_default_country")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "US".into()),
        in_queue,
        mandatory_keys: params
            .get("_mandatory_customer_lookup_keys")
            .map(|v| split_list(v))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["_customer_number".into()]),
        ttl: Duration::from_secs(number(&params, &["_ttl"], 86_400).max(60)),
        direction,
        media_type: params
            .get("_media_type")
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| m == "chat")
            .unwrap_or_else(|| "voice".into()),
        wait_for_agent: flag(&params, "_wait_for_agent", false),
        wait_for_user_confirm: flag(&params, "_wait_for_user_confirm", false),
        provider_name: params.get("_provider_name").cloned().unwrap_or_default(),
        access_number: ["_access_number", "_route_point"]
            .iter()
            .find_map(|n| params.get(*n).filter(|v| !v.is_empty()).cloned()),
        chat_service: params
            .get("_chat_service")
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| "customer-support".into()),
        params,
    }
}

/// Replaces every `$name$` by the request's `name` (empty when absent).
fn substitute(value: &str, request: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('$') {
        let after = &rest[start + 1..];
        match after.find('$') {
            Some(end) if end > 0 && !after[..end].contains(char::is_whitespace) => {
                out.push_str(&rest[..start]);
                out.push_str(request.get(&after[..end]).map_or("", |v| v.as_str()));
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a customer number is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum NumberProblem {
    Impossible,
    Premium,
}

/// Checks a number the way GMS's options ask: it must be a possible number
/// of its country (`+` numbers carry theirs), and not a premium-rate one.
pub fn check_number(number: &str, options: &Effective) -> Result<(), NumberProblem> {
    let country = options
        .default_country
        .to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .ok();
    let parsed = phonenumber::parse(country, number);
    let valid = parsed.as_ref().is_ok_and(phonenumber::is_valid);
    if options.disallow_impossible && !valid {
        return Err(NumberProblem::Impossible);
    }
    if options.disallow_premium {
        if let Ok(n) = &parsed {
            if n.number_type(&phonenumber::metadata::DATABASE) == phonenumber::Type::PremiumRate {
                return Err(NumberProblem::Premium);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn configuration_beats_the_request_unless_overwritable() {
        let service: HashMap<String, String> = HashMap::from([
            ("_provide_code".into(), "false".into()),
            ("_target".into(), "Sales@Stat".into()),
            ("_overwritable_options".into(), "_target".into()),
            ("_vq".into(), "VQ_$region$".into()),
        ]);
        let request = map(&[
            ("_provide_code", "true"),
            ("_target", "Support@Stat"),
            ("region", "emea"),
        ]);
        let e = resolve(&service, &request, &CallbackSettings::default());
        assert_eq!(e.params["_provide_code"], "false");
        assert_eq!(e.params["_target"], "Support@Stat");
        assert_eq!(e.params["_vq"], "VQ_emea");
    }

    #[test]
    fn tokens() {
        let r = map(&[("a", "1"), ("b", "2")]);
        assert_eq!(substitute("$a$-$b$", &r), "1-2");
        assert_eq!(substitute("cost: 5$", &r), "cost: 5$");
        assert_eq!(substitute("$missing$x", &r), "x");
        assert_eq!(substitute("$ a $", &r), "$ a $");
    }

    #[test]
    fn defaults_are_gms_defaults() {
        let e = resolve(
            &HashMap::new(),
            &BTreeMap::new(),
            &CallbackSettings::default(),
        );
        assert_eq!(e.bucket, Duration::from_secs(300));
        assert_eq!(e.max_per_bucket, 100);
        assert_eq!(e.max_queued, 1000);
        assert_eq!(e.in_queue, InQueueCheck::On);
        assert!(e.disallow_premium && e.disallow_impossible);
        assert_eq!(e.direction, Direction::Userterminated);
        assert_eq!(e.media_type, "voice");
        let odd = resolve(
            &HashMap::from([("_request_time_bucket".into(), "7".into())]),
            &BTreeMap::new(),
            &CallbackSettings::default(),
        );
        assert_eq!(
            odd.bucket,
            Duration::from_secs(300),
            "7 is not a bucket size"
        );
    }

    #[test]
    fn numbers() {
        let e = resolve(
            &HashMap::new(),
            &BTreeMap::new(),
            &CallbackSettings::default(),
        );
        assert_eq!(check_number("+1 650 253 0000", &e), Ok(()));
        assert_eq!(check_number("650-253-0000", &e), Ok(()));
        assert_eq!(check_number("5551234", &e), Err(NumberProblem::Impossible));
        assert_eq!(check_number("call me", &e), Err(NumberProblem::Impossible));
        assert_eq!(
            check_number("1-900-976-1234", &e),
            Err(NumberProblem::Premium)
        );
        assert_eq!(
            check_number("+33 8 99 12 34 56", &e),
            Err(NumberProblem::Premium)
        );
        let lax = resolve(
            &HashMap::from([
                ("_disallow_impossible_phone_numbers".into(), "false".into()),
                ("_disallow_premium_phone_numbers".into(), "false".into()),
            ]),
            &BTreeMap::new(),
            &CallbackSettings::default(),
        );
        assert_eq!(check_number("5551234", &lax), Ok(()));
        assert_eq!(check_number("1-900-976-1234", &lax), Ok(()));
    }
}
