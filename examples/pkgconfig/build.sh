#!/bin/sh
# The same module as examples/cmake, built by a plain compiler command with pkg-config:
#   conan install --requires=llama-cpp/b11312 -pr:a ../../profiles/linux-x86_64 -g PkgConfigDeps -of build
#   PKG_CONFIG_PATH=build ./build.sh
# --static is not needed (the package's .pc files already list every archive and system lib in
# link order) but is harmless; it is what a static-minded build system would pass. The package's
# -lstdc++ (declared for C consumers) is dropped: with it, -static-libstdc++ would not apply.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/build/libexample_module.so}
${CXX:-g++} -std=c++17 -O2 -shared -fPIC -fstack-protector-strong -fvisibility=hidden -fvisibility-inlines-hidden \
    "$here/../cmake/module.cpp" -o "$out" \
    $(pkg-config --cflags llama) $(pkg-config --static --libs llama | sed 's/ -lstdc++//g') \
    -static-libstdc++ -static-libgcc -Wl,--version-script="$here/../cmake/module.map" \
    -Wl,-z,relro,-z,now,-z,noexecstack,-z,defs
echo "$out"
