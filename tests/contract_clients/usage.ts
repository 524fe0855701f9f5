// A front end's use of the generated client, type-checked under `tsc --strict` in CI: if the contract stops
// describing what a my-page, chatbot or staff front end needs (a required precondition, a file upload, typed
// problem codes), this file stops compiling.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema";

type Problem = components["schemas"]["Problem"];

const api = createClient<paths>({ baseUrl: "https://api.example.jp" });

export async function signIn(email: string, password: string): Promise<string> {
  const { data, error } = await api.POST("/v1/auth/token", {
    body: { grant_type: "password", username: email, password },
    bodySerializer: (body) => new URLSearchParams(body as Record<string, string>),
  });
  if (error) throw new Error(error.code);
  return data.access_token;
}

export async function openConsultation(token: string, retryKey: string): Promise<string> {
  const { data, error, response } = await api.POST("/v1/consultations", {
    headers: { Authorization: `Bearer ${token}`, "Idempotency-Key": retryKey },
    body: {
      channel: "web",
      relation: "self",
      title: "掲示板に実名と住所を書かれた",
      narrative: "匿名掲示板に私の氏名と住所が書き込まれています。削除の方法を知りたいです。",
      categories: ["RIGHTS.PRIVACY_ID"],
      desired_outcomes: ["removal"],
      consent: { terms: true, sensitive_data: true, terms_version: "2026-11" },
    },
  });
  if (error) {
    // Problem codes are typed: a misspelt code does not compile.
    const known: Problem["code"] = error.code;
    if (known === "terms_outdated") return `show terms ${error.current_terms_version ?? ""}`;
    throw new Error(known);
  }
  const etag: string | null = response.headers.get("ETag");
  return `${data.id} ${etag ?? ""}`;
}

export async function closeConsultation(token: string, id: string, etag: string) {
  // If-Match is required by the server, so the generated type requires it too.
  return api.POST("/v1/consultations/{consultation_id}/close", {
    params: { path: { consultation_id: id }, header: { "if-match": etag } },
    headers: { Authorization: `Bearer ${token}` },
  });
}

export async function uploadScreenshot(token: string, consultation: string, evidence: string, file: Blob) {
  // The upload takes a Blob (a File from an <input type="file">), sent as multipart/form-data.
  return api.PUT("/v1/consultations/{consultation_id}/evidence/{evidence_id}/file", {
    params: { path: { consultation_id: consultation, evidence_id: evidence } },
    headers: { Authorization: `Bearer ${token}` },
    body: { file },
    bodySerializer: (body) => {
      const form = new FormData();
      form.append("file", body.file);
      return form;
    },
  });
}

export async function chat(sessionId: string, sessionToken: string, text: string) {
  const { data, error } = await api.POST("/v1/chatbot/sessions/{session_id}/messages", {
    params: { path: { session_id: sessionId } },
    headers: { "X-Chatbot-Token": sessionToken },
    body: { text },
  });
  if (error) return error.code;
  return data.messages.map((m) => m.text).join("\n");
}

export async function problemEntry(code: Problem["code"]) {
  const { data } = await api.GET("/v1/problems/{code}", { params: { path: { code } } });
  return data?.title_ja;
}
