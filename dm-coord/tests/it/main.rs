//! Integration tests of dm-coord: the conformance suite on every store, and election and
//! keepalive on top of them.

mod conformance;
mod election;
mod embedded;
mod etcd;
mod etcd_partition;
mod keepalive;
mod partition;
mod tls;
