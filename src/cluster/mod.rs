//! Several gmshub nodes as one service: membership kept in the shared store
//! (each node renews a record with a short TTL, so a node that dies drops out
//! by itself), and the bus that carries Bayeux traffic between nodes.
//! May use: `channels` (the store interface), `bayeux` (the relay).

mod bus;
mod membership;
mod outbox;

pub use bus::{deliver_to, node_of, Receipt, RedisBus};
pub use membership::{JoinError, Membership, NodeInfo};
