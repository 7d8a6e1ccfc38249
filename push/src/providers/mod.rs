pub mod apns;
pub mod fcm;
pub mod http;
pub mod wns;
