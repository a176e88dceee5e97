# How test_package and tests/programs link their loaders (programs that dlopen a NIF the way a VM
# does), as one function:
#   loader_link(<target>)
#  - MinGW: fully static (runs under wine without MinGW's DLLs)
#  - musl (the Zig profiles): a dynamic executable, since a static musl program cannot dlopen;
#    zig links musl programs statically unless told -dynamic. And position independent: zig
#    0.17's musl libc.so stub gives stdin, stdout and stderr one address, so a non-PIE program's
#    copy relocation made all three stdout (the NIF's log lines left on the wrong stream)
#  - otherwise: the C++ runtime static, so the loader runs where the NIF must (an older glibc)
include(CheckCSourceCompiles)
check_c_source_compiles("#include <stdio.h>\n#ifndef __GLIBC__\n#error not glibc\n#endif\nint main(void) { return 0; }"
                        LOADER_LIBC_IS_GLIBC)
function(loader_link target)
    if(WIN32)
        target_link_options(${target} PRIVATE -static)
    elseif(APPLE)
        return()
    elseif(NOT LOADER_LIBC_IS_GLIBC AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
        set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
        target_link_options(${target} PRIVATE -dynamic -pie)
    else()
        target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc)
    endif()
endfunction()
