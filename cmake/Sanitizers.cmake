# LAMINA_SANITIZE: everything built with AddressSanitizer + UndefinedBehaviorSanitizer (any undefined
# behaviour is fatal). LAMINA_FUZZ: the libFuzzer targets in tests/fuzz as well (clang only), with
# coverage instrumentation of everything they reach. docs/reliability.md.
option(LAMINA_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(LAMINA_FUZZ "Build the libFuzzer targets in tests/fuzz (clang; implies LAMINA_SANITIZE)" OFF)

if(LAMINA_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "LAMINA_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++ "
                        "-DCMAKE_C_COMPILER=clang")
  endif()
  set(LAMINA_SANITIZE ON CACHE BOOL "" FORCE)
endif()

if(LAMINA_SANITIZE)
  set(lamina_sanitizers -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  # UBSan's vptr check needs RTTI of every type it sees; the plugins' hidden classes would trip it.
  list(APPEND lamina_sanitizers -fno-sanitize=vptr)
  add_compile_options(${lamina_sanitizers})
  add_link_options(${lamina_sanitizers})
  # The instrumentation keeps clang from vectorising some `omp simd` loops, and clang warns that it
  # could not: true of this build only (the uninstrumented build vectorises them), so not a warning.
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    add_compile_options(-Wno-pass-failed)
  endif()
  if(LAMINA_FUZZ)
    add_compile_options(-fsanitize=fuzzer-no-link)
  endif()
endif()

# Plugins link with --no-undefined; with sanitizers their references to the runtime (which lives in
# the executable) are undefined by design. A flag on the link line after the plugin's own options
# turns the check off again for the targets built here.
function(lamina_sanitizer_relax_plugins)
  if(NOT LAMINA_SANITIZE)
    return()
  endif()
  get_property(plugins GLOBAL PROPERTY LAMINA_PLUGINS)
  foreach(dir IN ITEMS tests/fixtures)
    if(EXISTS "${PROJECT_SOURCE_DIR}/${dir}" AND LAMINA_BUILD_TESTS)
      get_property(fixtures DIRECTORY "${PROJECT_SOURCE_DIR}/${dir}" PROPERTY BUILDSYSTEM_TARGETS)
      list(APPEND plugins ${fixtures})
    endif()
  endforeach()
  foreach(t IN LISTS plugins)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "MODULE_LIBRARY" OR type STREQUAL "SHARED_LIBRARY")
      target_link_libraries(${t} PRIVATE "-Wl,-z,undefs")
    endif()
  endforeach()
endfunction()
