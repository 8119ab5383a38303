# cmake/install.cmake: install rules and package metadata for gomem.
#
# Installs libgomem.so (with its soname links), libgomem.a and gomem.h, plus
# what consumers need to find them:
#   find_package(gomem)  -> gomem::gomem (shared), gomem::gomem_static
#   pkg-config gomem     -> -I<include> / -L<lib> -lgomem
# Included from the top-level CMakeLists.txt after the targets exist.

include(CMakePackageConfigHelpers)

set(GOMEM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/gomem)
set(GOMEM_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS gomem gomem_static
  EXPORT gomemTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The malloc replacement: a library to preload or link, not a CMake
# package target.
install(TARGETS gomem_malloc gomem_malloc_static
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# gomem_static has no PUBLIC_HEADER property; install the header explicitly
# too so the header does not depend on which target carries it.
install(FILES ${PROJECT_SOURCE_DIR}/include/gomem.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT gomemTargets
  NAMESPACE gomem::
  FILE gomemTargets.cmake
  DESTINATION ${GOMEM_CMAKE_DIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/gomemConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gomemConfig.cmake
  INSTALL_DESTINATION ${GOMEM_CMAKE_DIR})
# The soname carries only the major version, so promise the same here.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/gomemConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/gomemConfig.cmake
  ${PROJECT_BINARY_DIR}/gomemConfigVersion.cmake
  DESTINATION ${GOMEM_CMAKE_DIR})

# pkg-config: paths relative to the .pc file's own directory (${pcfiledir}),
# so `cmake --install build --prefix DIR` yields a working file for any DIR,
# not just the prefix chosen at configure time. Absolute install dirs given
# by the user are used as they are.
if(IS_ABSOLUTE "${GOMEM_PKGCONFIG_DIR}")
  set(GOMEM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _gm_rel "/_/${GOMEM_PKGCONFIG_DIR}" "/_")
  string(REGEX REPLACE "/$" "" _gm_rel "${_gm_rel}")
  set(GOMEM_PC_PREFIX "\${pcfiledir}/${_gm_rel}")
endif()
foreach(_gm_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_gm_dir}}")
    set(GOMEM_PC_${_gm_dir} "${CMAKE_INSTALL_${_gm_dir}}")
  else()
    set(GOMEM_PC_${_gm_dir} "\${prefix}/${CMAKE_INSTALL_${_gm_dir}}")
  endif()
endforeach()
configure_file(${CMAKE_CURRENT_LIST_DIR}/gomem.pc.in
  ${PROJECT_BINARY_DIR}/gomem.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/gomem.pc DESTINATION ${GOMEM_PKGCONFIG_DIR})
