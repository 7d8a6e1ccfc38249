//! The push providers, one file each, behind [`Provider`](crate::Provider).
//! May use: the crate root, `format`.

pub mod apns;
pub mod fcm;
pub mod http;
pub mod wns;
