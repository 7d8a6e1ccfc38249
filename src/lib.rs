//! The parts of the gmshub binary that its integration tests reach
//! directly: the store backends and the cluster.

pub mod cluster;
pub mod store;
