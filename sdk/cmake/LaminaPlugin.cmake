# lamina_add_plugin(NAME <name> KIND layer|optimizer|backend|communicator SOURCES <files...>
#                   [PROVIDES <names...>] [VERSION <v>] [LINK <targets...>])
#
# Builds a plugin module that uses only the SDK, hides every symbol but the four entry points,
# and writes its manifest (<name>.json) beside it, in the folder the loader searches.
include_guard(GLOBAL)

if(NOT DEFINED LAMINA_PLUGIN_OUTPUT_DIR)
  set(LAMINA_PLUGIN_OUTPUT_DIR "${CMAKE_BINARY_DIR}/lib/lamina/plugins")
endif()
set(_lamina_plugin_cmake_dir "${CMAKE_CURRENT_LIST_DIR}")

function(lamina_add_plugin)
  cmake_parse_arguments(P "" "NAME;KIND;VERSION" "SOURCES;PROVIDES;LINK" ${ARGN})
  if(NOT P_NAME OR NOT P_KIND OR NOT P_SOURCES)
    message(FATAL_ERROR "lamina_add_plugin needs NAME, KIND and SOURCES")
  endif()
  if(NOT P_KIND MATCHES "^(layer|optimizer|backend|communicator)$")
    message(FATAL_ERROR "lamina_add_plugin(${P_NAME}): KIND must be layer, optimizer, backend or communicator, not '${P_KIND}'")
  endif()
  if(NOT P_VERSION)
    set(P_VERSION "${PROJECT_VERSION}")
  endif()
  set(target "lamina_${P_KIND}_${P_NAME}")
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE lamina::sdk ${P_LINK})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME "${target}"
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
  file(WRITE "${LAMINA_PLUGIN_OUTPUT_DIR}/${target}.json"
       "{\n  \"name\": \"${P_NAME}\",\n  \"kind\": \"${P_KIND}\",\n  \"version\": \"${P_VERSION}\",\n"
       "  \"library\": \"${target}.so\",\n  \"abi\": [1, 1],\n  \"provides\": [${provides}]\n}\n")
  set_property(GLOBAL APPEND PROPERTY LAMINA_PLUGINS ${target})
endfunction()
