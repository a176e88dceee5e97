# CI-time scaffolding for tests/test_cuda.py's reduced cuda build, never used by the recipe:
# compiles ggml-cuda's .cu files in unity groups (CMake >= 3.31 can unity-build CUDA), so the heavy
# headers every file includes (common.cuh, CCCL/cub) are parsed once per group instead of once
# per file. Included through CMAKE_PROJECT_INCLUDE after each project(); the ggml-cuda target
# exists only at the end of the top-level directory, hence the deferred call.
#
# Upstream's .cuh files mostly have no include guard, so files that define the same things cannot
# share a group (found by building b11312 with every file grouped; each showed "has already been
# defined" errors):
#   - the fattn-tile/-mma-f16/-vec template instances (fattn-*.cuh, cp-async.cuh): at most one
#     instance of each kind per group;
#   - convert.cu, cpy.cu, getrows.cu (dequantize.cuh): at most one per group;
#   - fattn-tile.cu, fattn.cu, conv2d-dw.cu (conv2d.cu's struct names), gated_delta_net.cu
#     (ggml-cuda.cu includes its header): compiled alone.
# Every other .cu file: six per group.
function(_llama_cpp_tests_unity_ggml_cuda)
  if(NOT TARGET ggml-cuda)
    return()  # a try_compile project, or a consumer's build
  endif()
  get_target_property(sources ggml-cuda SOURCES)
  set(plain 0)
  foreach(kind IN ITEMS tile mma vec dequantize)
    set(count_${kind} 0)
  endforeach()
  foreach(source IN LISTS sources)
    get_filename_component(name "${source}" NAME)
    set(kind "")
    if(NOT name MATCHES "\\.cu$" OR name MATCHES "^(fattn-tile|fattn|conv2d-dw|gated_delta_net)\\.cu$")
      continue()
    elseif(name MATCHES "^fattn-tile-instance")
      set(kind tile)
    elseif(name MATCHES "^fattn-mma-f16-instance")
      set(kind mma)
    elseif(name MATCHES "^fattn-vec-instance")
      set(kind vec)
    elseif(name MATCHES "^(convert|cpy|getrows)\\.cu$")
      set(kind dequantize)
    endif()
    if(kind)
      set(group ${count_${kind}})
      math(EXPR count_${kind} "${count_${kind}} + 1")
    else()
      math(EXPR group "${plain} / 6")
      math(EXPR plain "${plain} + 1")
    endif()
    set_source_files_properties("${source}" TARGET_DIRECTORY ggml-cuda PROPERTIES UNITY_GROUP "g${group}")
  endforeach()
  set_target_properties(ggml-cuda PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
endfunction()

get_property(_llama_cpp_tests_unity_deferred GLOBAL PROPERTY _LLAMA_CPP_TESTS_UNITY_GGML_CUDA)
if(NOT _llama_cpp_tests_unity_deferred)
  set_property(GLOBAL PROPERTY _LLAMA_CPP_TESTS_UNITY_GGML_CUDA ON)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _llama_cpp_tests_unity_ggml_cuda)
endif()
