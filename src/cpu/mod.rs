//! placeholder until the CPU reference lands
