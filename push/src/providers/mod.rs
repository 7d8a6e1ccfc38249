pub mod fcm;
pub mod http;
