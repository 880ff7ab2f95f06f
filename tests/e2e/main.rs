//! End-to-end tests: the real binary, the real AWS SDK, real HTTP, against
//! the local emulator (moto + the project's layer). One integration target.

mod cli;
mod control_api;
mod daemon;
mod drift;
mod events;
mod faults;
mod harness;
mod init;
mod notify;
mod policy;
mod real_ec2;
mod real_ecs;
mod safety;
