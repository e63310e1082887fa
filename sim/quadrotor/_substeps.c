/* The quadrotor's physics-rate loop in C: rate controller + mixer + wind drag around each mj_step.
 *
 * robolearn.sim.quadrotor.substeps documents the arithmetic; this file performs the same double
 * operations in the same order as its Python reference, so the two are bit-identical (build with
 * -ffp-contract=off: a fused multiply-add would round differently). It needs no MuJoCo header: Python
 * passes the address of libmujoco's mj_step, of the mjModel/mjData, and of the mjData arrays it writes,
 * and the loop runs with the GIL released, so threads step their own envs in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef void (*mj_step_fn)(const void *model, void *data);

/* Constants of a rate controller, in this order: gains J*K (3), gyroscopic factors (3), mixer rows (4x4,
 * row-major: thrust, tau_x, tau_y, tau_z coefficients of each rotor), f_max (N). */
enum { K0 = 0, G0 = 3, ROWS = 6, FMAX = 22, NCONST = 23 };

typedef struct {
    double thrust, cmd[3], push[3], drag[3], wind[3];
} Command;

static double positive(double x) { return x > 0.0 ? x : 0.0; }

/* Python's max(f0, f1, f2, f3): the first value, replaced by each later one that is greater. */
static double max4(const double *f) {
    double m = f[0];
    for (int i = 1; i < 4; ++i)
        if (f[i] > m) m = f[i];
    return m;
}

static void rate_loop(mj_step_fn step, const void *model, void *data, int nstep, const double *qvel,
                      double *ctrl, double *force, const double *c, const Command *u, double *drag_out) {
    const double *row = ctrl ? c + ROWS : NULL; /* no controller in motors mode */
    double t[4] = {0.0, 0.0, 0.0, 0.0};
    if (ctrl)
        for (int i = 0; i < 4; ++i) t[i] = row[4 * i] * u->thrust;
    double fx = 0.0, fy = 0.0, fz = 0.0;
    for (int s = 0; s < nstep; ++s) {
        double vx = qvel[0], vy = qvel[1], vz = qvel[2], wx = qvel[3], wy = qvel[4], wz = qvel[5];
        if (ctrl) {
            double tx = c[K0] * (u->cmd[0] - wx) + c[G0] * wy * wz;
            double ty = c[K0 + 1] * (u->cmd[1] - wy) + c[G0 + 1] * wz * wx;
            double tz = c[K0 + 2] * (u->cmd[2] - wz) + c[G0 + 2] * wx * wy;
            double f[4];
            for (int i = 0; i < 4; ++i)
                f[i] = t[i] + row[4 * i + 1] * tx + row[4 * i + 2] * ty + row[4 * i + 3] * tz;
            double excess = max4(f) - c[FMAX];
            if (excess > 0.0)
                for (int i = 0; i < 4; ++i) f[i] = f[i] - excess;
            for (int i = 0; i < 4; ++i) ctrl[i] = positive(f[i]);
        }
        fx = u->drag[0] * (u->wind[0] - vx);
        fy = u->drag[1] * (u->wind[1] - vy);
        fz = u->drag[2] * (u->wind[2] - vz);
        force[0] = u->push[0] + fx;
        force[1] = u->push[1] + fy;
        force[2] = u->push[2] + fz;
        step(model, data);
    }
    drag_out[0] = fx, drag_out[1] = fy, drag_out[2] = fz;
}

static int as_address(PyObject *o, void **out) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    *out = (void *)(uintptr_t)v;
    return 0;
}

/* One env's loop: the addresses, nstep and command parsed from run()'s 21 arguments. */
typedef struct {
    void *addr[8]; /* mj_step, model, data, (unused), qvel, ctrl, force, consts */
    int nstep;
    Command u;
    double drag[3];
} Job;

static int parse_job(PyObject *const *args, Py_ssize_t nargs, Job *job) {
    if (nargs != 21) {
        PyErr_Format(PyExc_TypeError, "a job takes 21 arguments (%zd given)", nargs);
        return -1;
    }
    job->addr[3] = NULL;
    for (int i = 0; i < 8; ++i)
        if (i != 3 && as_address(args[i], &job->addr[i]) < 0) return -1;
    long nstep = PyLong_AsLong(args[3]);
    if (nstep == -1 && PyErr_Occurred()) return -1;
    void **a = job->addr;
    if (!a[0] || !a[1] || !a[2] || !a[4] || !a[6] || (a[5] && !a[7]) || nstep < 0 || nstep > 1000000) {
        PyErr_SetString(PyExc_ValueError, "a job has a null address or nstep outside [0, 1e6]");
        return -1;
    }
    job->nstep = (int)nstep;
    double v[13];
    for (int i = 0; i < 13; ++i) {
        v[i] = PyFloat_AsDouble(args[8 + i]);
        if (v[i] == -1.0 && PyErr_Occurred()) return -1;
    }
    Command u = {v[0], {v[1], v[2], v[3]}, {v[4], v[5], v[6]}, {v[7], v[8], v[9]}, {v[10], v[11], v[12]}};
    job->u = u;
    return 0;
}

static void run_job(Job *j) {
    rate_loop((mj_step_fn)j->addr[0], j->addr[1], j->addr[2], j->nstep, (const double *)j->addr[4],
              (double *)j->addr[5], (double *)j->addr[6], (const double *)j->addr[7], &j->u, j->drag);
}

/* run(step, model, data, nstep, qvel, ctrl, force, consts, thrust, cx, cy, cz, px, py, pz, dx, dy, dz,
 *     ux, uy, uz) -> (fx, fy, fz). Addresses are ints; ctrl = 0 runs the drag alone (motors mode). */
static PyObject *run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    Job job;
    if (parse_job(args, nargs, &job) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    run_job(&job);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(ddd)", job.drag[0], job.drag[1], job.drag[2]);
}

/* run_many(jobs) -> [(fx, fy, fz), ...]: run() of each job (a tuple of run's arguments), in order,
 * with the GIL released once for all of them. */
static PyObject *run_many(PyObject *self, PyObject *jobs) {
    (void)self;
    PyObject *seq = PySequence_Fast(jobs, "run_many() takes a sequence of argument tuples");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Job *parsed = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(Job));
    PyObject *out = NULL;
    if (!parsed) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject *args = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, i), "a job must be a tuple");
        if (!args) goto done;
        int bad = parse_job(PySequence_Fast_ITEMS(args), PySequence_Fast_GET_SIZE(args), &parsed[i]);
        Py_DECREF(args);
        if (bad < 0) goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; ++i) run_job(&parsed[i]);
    Py_END_ALLOW_THREADS
    out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; ++i) {
        PyObject *drag = Py_BuildValue("(ddd)", parsed[i].drag[0], parsed[i].drag[1], parsed[i].drag[2]);
        if (!drag) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, drag);
    }
done:
    PyMem_Free(parsed);
    Py_DECREF(seq);
    return out;
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))run, METH_FASTCALL, "The physics-rate loop; see substeps.py."},
    {"run_many", run_many, METH_O, "run() of each job, the GIL released once; see substeps.py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_substeps", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__substeps(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "NCONST", NCONST) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
