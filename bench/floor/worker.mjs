// The benchmark's floor: the least a worker can do per request (a small JSON body). Its CPU per
// request, measured like the real workers' in the same run, is the unit the benchmark reports in.
export default {
  fetch() {
    return Response.json({ ok: true, name: 'floor' });
  },
};
