#!/usr/bin/env bash
# Checks that MuJoCo can render offscreen on the CPU (EGL via Mesa's llvmpipe, or OSMesa).
# Installs the Debian packages when run as root; otherwise prints the exact packages to install.
set -u
PY=${1:-python3}
probe() {
  MUJOCO_GL=$1 PYOPENGL_PLATFORM=$1 timeout 60 "$PY" -c "
import mujoco
m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\"1\"/></worldbody></mujoco>')
r = mujoco.Renderer(m, 8, 8); r.update_scene(mujoco.MjData(m)); r.render()" >/dev/null 2>&1
}
want=${MUJOCO_GL:-egl}
if probe "$want"; then exit 0; fi
pkgs="libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "offscreen rendering needs Mesa's EGL/OSMesa; installing: $pkgs"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs) >/dev/null || true
  if probe "$want"; then exit 0; fi
  if probe osmesa; then echo "EGL unavailable; set MUJOCO_GL=osmesa"; exit 0; fi
fi
echo "robolearn: MuJoCo cannot render offscreen (MUJOCO_GL=$want)." >&2
echo "  install the GL libraries, e.g.: sudo apt-get install $pkgs" >&2
echo "  then use MUJOCO_GL=egl (or MUJOCO_GL=osmesa). Videos are skipped until then." >&2
exit 0
