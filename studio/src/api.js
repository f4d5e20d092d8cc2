// Calls to the studio's endpoints on this server. Each carries the token the page was
// served with; the server refuses calls without it (another site's page cannot read it).
const token = document.querySelector('meta[name="pss-studio-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message ?? `the server answered ${status}`);
    this.status = status;
    this.details = error.details ?? [];
  }
}

async function send(name, body) {
  const init = { headers: { "x-pss-studio-token": token } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/studio/api/${name}`, init);
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON: the status says enough */ }
    throw new ApiError(response.status, data);
  }
  return response;
}

export async function call(name, body) {
  return (await send(name, body)).json();
}

export async function download(name, body) {
  const response = await send(name, body);
  const disposition = response.headers.get("content-disposition") ?? "";
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "download";
  return { filename, blob: await response.blob() };
}
