//! The GMS services built on the Bayeux engine, push delivery and a store:
//! Chat API v1 and v2, the agent side, notifications, callbacks and the
//! Storage API. Each arrives with its own issue; the store traits they need
//! will be defined here and implemented in the binary.
