"""Helpers shared by tests (importable: tests/ is on sys.path under pytest's rootdir conftest)."""


def can_render() -> bool:
    """Whether MuJoCo can render offscreen here (GL libraries present)."""
    import mujoco

    try:
        model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
        with mujoco.Renderer(model, 8, 8) as renderer:
            renderer.update_scene(mujoco.MjData(model))
            renderer.render()
        return True
    except Exception:
        return False
