//! lunbox configuration: the model, its text syntax and atomic persistence. (Filled in by the
//! composite issue.)
#![no_std]
#![forbid(unsafe_code)]
