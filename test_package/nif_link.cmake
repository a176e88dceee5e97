# The link line README ("Linking a NIF") tells NIF authors to use, as one function; test_package
# and tests/programs both link their libraries with it.
#   nif_link(<target> <exported symbol or glob> <allow undefined: ON for an Erlang NIF>)
#  - the C++ runtime linked statically (the archives are C++): no dependency on the host's
#    libstdc++; LINKER_LANGUAGE CXX so that a C library gets the C++ driver and CMake drops the
#    package's declared stdc++ as the driver's implicit library
#  - only the entry points exported (a version script: namespace std keeps default visibility)
#  - every undefined symbol an error at link time, except where the host provides them (enif_*)
#  - hardened: full RELRO, BIND_NOW, non-executable stack, stack protector; no RPATH
#  - --gc-sections: the archives have one section per function, unreached code is dropped
function(nif_link target exported allow_undefined)
    set_target_properties(${target} PROPERTIES LINKER_LANGUAGE CXX SKIP_BUILD_RPATH ON
                          C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
    if(MSVC)
        return()
    endif()
    target_compile_options(${target} PRIVATE -fstack-protector-strong)
    if(WIN32)  # MinGW: exports are what is dllexport-ed
        target_link_options(${target} PRIVATE -static -Wl,--no-undefined -Wl,--nxcompat -Wl,--dynamicbase)
        target_link_libraries(${target} PRIVATE ssp)  # the stack protector's runtime, static with -static
    elseif(APPLE)
        set(script ${CMAKE_BINARY_DIR}/${target}.exp)
        file(WRITE ${script} "_${exported}\n")
        target_link_options(${target} PRIVATE "LINKER:-exported_symbols_list,${script}")
        if(allow_undefined)
            target_link_options(${target} PRIVATE -undefined dynamic_lookup)
        endif()
    else()
        set(script ${CMAKE_BINARY_DIR}/${target}.map)
        file(WRITE ${script} "{\n  global: ${exported};\n  local: *;\n};\n")
        target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc "LINKER:--version-script=${script}"
                            "LINKER:-z,relro,-z,now,-z,noexecstack" "LINKER:--gc-sections")
        set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${script})
        if(NOT allow_undefined)
            target_link_options(${target} PRIVATE "LINKER:-z,defs")
        endif()
    endif()
endfunction()
