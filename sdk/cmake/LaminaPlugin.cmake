# lamina_add_plugin(NAME <name> KIND layer|optimizer|backend|communicator SOURCES <files...>
#                   [PROVIDES <names...>] [VERSION <v>] [LINK <targets...>]
#                   [SCORE_AT_MOST <n>] [NEEDS <library> <what it is> [<library> <what it is>...]]
#                   [INSTALL_DESTINATION <dir>] [NO_INSTALL])
#
# SCORE_AT_MOST (backends): the highest score lamina_plugin_score returns; the backend "auto" does not
# load a backend that cannot outscore one already loaded. NEEDS: shared libraries the machine must
# have, each followed by what it is for people (libcuda.so.1 "the NVIDIA driver"); where one is
# missing the plugin is reported unusable, with that text, without being loaded. Both go into the
# manifest.
#
# Builds a plugin module that uses only the SDK, hides every symbol but the four entry points,
# and writes its manifest (lamina_<kind>_<name>.json) beside it, in LAMINA_PLUGIN_OUTPUT_DIR
# (default: <build>/lib/lamina/plugins), a folder to put on LAMINA_PLUGIN_PATH. `cmake --install`
# copies module and manifest to INSTALL_DESTINATION (default: <libdir>/lamina/plugins).
#
# Works the same inside the lamina source tree and in a third-party project after
# find_package(lamina REQUIRED), which includes this file.
include_guard(GLOBAL)
include(GNUInstallDirs)

if(NOT DEFINED LAMINA_PLUGIN_OUTPUT_DIR)
  set(LAMINA_PLUGIN_OUTPUT_DIR "${CMAKE_BINARY_DIR}/lib/lamina/plugins")
endif()
set(_lamina_plugin_cmake_dir "${CMAKE_CURRENT_LIST_DIR}")
if(NOT DEFINED LAMINA_SDK_INCLUDE_DIR)
  get_filename_component(LAMINA_SDK_INCLUDE_DIR "${CMAKE_CURRENT_LIST_DIR}/../include" ABSOLUTE)
endif()

# The ABI version a plugin built here declares, read from the header it is compiled against.
file(STRINGS "${LAMINA_SDK_INCLUDE_DIR}/lamina/lamina_plugin.h" _lamina_abi_lines
     REGEX "^#define LAMINA_ABI_(MAJOR|MINOR) [0-9]+")
foreach(_line IN LISTS _lamina_abi_lines)
  if(_line MATCHES "LAMINA_ABI_MAJOR ([0-9]+)")
    set(LAMINA_ABI_MAJOR "${CMAKE_MATCH_1}")
  elseif(_line MATCHES "LAMINA_ABI_MINOR ([0-9]+)")
    set(LAMINA_ABI_MINOR "${CMAKE_MATCH_1}")
  endif()
endforeach()
if(NOT DEFINED LAMINA_ABI_MAJOR OR NOT DEFINED LAMINA_ABI_MINOR)
  message(FATAL_ERROR "cannot read the plugin ABI version from ${LAMINA_SDK_INCLUDE_DIR}/lamina/lamina_plugin.h")
endif()

# lamina_write_plugin_manifest(<file> NAME <name> KIND <kind> VERSION <v> LIBRARY <file name>
#                              ABI <major> <minor> [PROVIDES <names...>] [SCORE_AT_MOST <n>]
#                              [NEEDS <library> <what it is>...])
# Writes a plugin's manifest, the JSON file lamina reads to find plugins without loading them.
function(lamina_write_plugin_manifest file)
  cmake_parse_arguments(M "" "NAME;KIND;VERSION;LIBRARY;SCORE_AT_MOST" "ABI;PROVIDES;NEEDS" ${ARGN})
  list(GET M_ABI 0 abi_major)
  list(GET M_ABI 1 abi_minor)
  set(provides "")
  if(M_PROVIDES)
    list(TRANSFORM M_PROVIDES PREPEND "\"")
    list(TRANSFORM M_PROVIDES APPEND "\"")
    list(JOIN M_PROVIDES ", " provides)
  endif()
  set(optional_keys "")
  if(NOT "${M_SCORE_AT_MOST}" STREQUAL "")
    if(NOT M_SCORE_AT_MOST MATCHES "^[0-9]+$")
      message(FATAL_ERROR "manifest of ${M_NAME}: SCORE_AT_MOST must be a whole number, not '${M_SCORE_AT_MOST}'")
    endif()
    string(APPEND optional_keys ",\n  \"score_at_most\": ${M_SCORE_AT_MOST}")
  endif()
  if(M_NEEDS)
    list(LENGTH M_NEEDS count)
    math(EXPR odd "${count} % 2")
    if(odd)
      message(FATAL_ERROR "manifest of ${M_NAME}: NEEDS takes pairs of a library and what it is, as in "
                          "NEEDS libcuda.so.1 \"the NVIDIA driver\"")
    endif()
    set(entries "")
    math(EXPR last "${count} - 1")
    foreach(i RANGE 0 ${last} 2)
      math(EXPR j "${i} + 1")
      list(GET M_NEEDS ${i} library)
      list(GET M_NEEDS ${j} what)
      if("${library}${what}" MATCHES "[\"\\]")
        message(FATAL_ERROR "manifest of ${M_NAME}: NEEDS ${library} \"${what}\" may hold no quote or backslash")
      endif()
      list(APPEND entries "\"${library}\": \"${what}\"")
    endforeach()
    list(JOIN entries ", " needs)
    string(APPEND optional_keys ",\n  \"needs\": {${needs}}")
  endif()
  file(WRITE "${file}"
       "{\n  \"name\": \"${M_NAME}\",\n  \"kind\": \"${M_KIND}\",\n  \"version\": \"${M_VERSION}\",\n"
       "  \"library\": \"${M_LIBRARY}\",\n  \"abi\": [${abi_major}, ${abi_minor}],\n"
       "  \"provides\": [${provides}]${optional_keys}\n}\n")
endfunction()

function(lamina_add_plugin)
  cmake_parse_arguments(P "NO_INSTALL" "NAME;KIND;VERSION;INSTALL_DESTINATION;SCORE_AT_MOST"
                        "SOURCES;PROVIDES;LINK;NEEDS" ${ARGN})
  if(NOT P_NAME OR NOT P_KIND OR NOT P_SOURCES)
    message(FATAL_ERROR "lamina_add_plugin needs NAME, KIND and SOURCES")
  endif()
  if(NOT P_NAME MATCHES "^[A-Za-z0-9_]+$")
    message(FATAL_ERROR "lamina_add_plugin(${P_NAME}): NAME may hold only letters, digits and '_'")
  endif()
  if(NOT P_KIND MATCHES "^(layer|optimizer|backend|communicator)$")
    message(FATAL_ERROR "lamina_add_plugin(${P_NAME}): KIND must be layer, optimizer, backend or communicator, not '${P_KIND}'")
  endif()
  if(NOT P_VERSION)
    set(P_VERSION "${PROJECT_VERSION}")
  endif()
  if(NOT P_VERSION)
    set(P_VERSION "0.0.0")
  endif()
  if(NOT P_INSTALL_DESTINATION)
    set(P_INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/lamina/plugins")
  endif()
  set(target "lamina_${P_KIND}_${P_NAME}")
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE lamina::sdk ${P_LINK})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME "${target}" SUFFIX ".so"
    LIBRARY_OUTPUT_DIRECTORY "${LAMINA_PLUGIN_OUTPUT_DIR}"
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_options(${target} PRIVATE "LINKER:--version-script=${_lamina_plugin_cmake_dir}/plugin.map"
                      "LINKER:--no-undefined")
  set(manifest "${LAMINA_PLUGIN_OUTPUT_DIR}/${target}.json")
  lamina_write_plugin_manifest("${manifest}" NAME "${P_NAME}" KIND "${P_KIND}" VERSION "${P_VERSION}"
    LIBRARY "${target}.so" ABI ${LAMINA_ABI_MAJOR} ${LAMINA_ABI_MINOR} PROVIDES ${P_PROVIDES}
    SCORE_AT_MOST ${P_SCORE_AT_MOST} NEEDS ${P_NEEDS})
  if(NOT P_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION "${P_INSTALL_DESTINATION}")
    install(FILES "${manifest}" DESTINATION "${P_INSTALL_DESTINATION}")
  endif()
  set_property(GLOBAL APPEND PROPERTY LAMINA_PLUGINS ${target})
endfunction()
