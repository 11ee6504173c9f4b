//! lunbox storage: block devices, MBR/GPT partitions, RAM/file/SD backends and the named device
//! registry. (Filled in by the storage issue.)
#![no_std]
#![forbid(unsafe_code)]
