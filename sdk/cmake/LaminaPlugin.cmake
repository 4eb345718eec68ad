# lamina_add_plugin(NAME <name> KIND layer|optimizer|backend|communicator SOURCES <files...>
#                   [PROVIDES <names...>] [VERSION <v>] [LINK <targets...>]
#                   [INSTALL_DESTINATION <dir>] [NO_INSTALL])
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

function(lamina_add_plugin)
  cmake_parse_arguments(P "NO_INSTALL" "NAME;KIND;VERSION;INSTALL_DESTINATION" "SOURCES;PROVIDES;LINK" ${ARGN})
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
  set(provides "")
  foreach(p IN LISTS P_PROVIDES)
    if(provides)
      string(APPEND provides ", ")
    endif()
    string(APPEND provides "\"${p}\"")
  endforeach()
  set(manifest "${LAMINA_PLUGIN_OUTPUT_DIR}/${target}.json")
  file(WRITE "${manifest}"
       "{\n  \"name\": \"${P_NAME}\",\n  \"kind\": \"${P_KIND}\",\n  \"version\": \"${P_VERSION}\",\n"
       "  \"library\": \"${target}.so\",\n  \"abi\": [${LAMINA_ABI_MAJOR}, ${LAMINA_ABI_MINOR}],\n"
       "  \"provides\": [${provides}]\n}\n")
  if(NOT P_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION "${P_INSTALL_DESTINATION}")
    install(FILES "${manifest}" DESTINATION "${P_INSTALL_DESTINATION}")
  endif()
  set_property(GLOBAL APPEND PROPERTY LAMINA_PLUGINS ${target})
endfunction()
