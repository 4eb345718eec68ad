# What `cmake --install` puts in a prefix, for third parties who build plugins and programs
# against an installed lamina:
#   include/lamina/...                       core headers, lamina_plugin.h, sdk/*.hpp
#   lib/liblamina.so*                        the core
#   lib/lamina/plugins/*.so, *.json          the built-in plugins (found beside liblamina)
#   bin/lamina                               the command-line tool (RPATH $ORIGIN/../lib)
#   lib/cmake/lamina/                        find_package(lamina): lamina::lamina, lamina::sdk,
#                                            lamina_add_plugin()
#   lib/pkgconfig/lamina.pc                  pkg-config --cflags --libs lamina
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LAMINA_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/lamina")

install(TARGETS lamina_sdk EXPORT laminaTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT laminaTargets NAMESPACE lamina:: DESTINATION "${LAMINA_CMAKE_INSTALL_DIR}")

configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/laminaConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/package/laminaConfig.cmake"
  INSTALL_DESTINATION "${LAMINA_CMAKE_INSTALL_DIR}"
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# Minor versions add to the SDK and keep old plugins loading; a new major is another ABI.
write_basic_package_version_file("${CMAKE_BINARY_DIR}/package/laminaConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  "${CMAKE_BINARY_DIR}/package/laminaConfig.cmake"
  "${CMAKE_BINARY_DIR}/package/laminaConfigVersion.cmake"
  "${CMAKE_CURRENT_LIST_DIR}/LaminaPlugin.cmake"
  "${CMAKE_CURRENT_LIST_DIR}/plugin.map"
  DESTINATION "${LAMINA_CMAKE_INSTALL_DIR}")

# The .pc file finds its prefix from its own location, so an installed tree can move.
file(RELATIVE_PATH LAMINA_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" LAMINA_PC_TO_PREFIX "${LAMINA_PC_TO_PREFIX}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/lamina.pc.in" "${CMAKE_BINARY_DIR}/package/lamina.pc" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/package/lamina.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
