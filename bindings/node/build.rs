//! Sets the linker flags a Node addon needs (undefined `napi_*` symbols resolved by the host).

fn main() {
    napi_build::setup();
}
