//! Chat API v2 parties for the end-to-end tests: a customer over REST
//! (`/genesys/2/chat/customer-support`) and an agent over the agent API.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::Server;

pub const SVC: &str = "/genesys/2/chat/customer-support";

pub struct Customer {
    pub http: reqwest::Client,
    pub base: String,
    pub chat_id: String,
    pub user_id: String,
    pub secure_key: String,
}

pub async fn request_chat(s: &Server, form: &[(&str, &str)]) -> Value {
    let r = reqwest::Client::new()
        .post(s.url(SVC))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

impl Customer {
    /// Goes on with the chat through another node (as a load balancer
    /// would send it once its node is gone).
    pub fn through(&mut self, s: &Server) {
        self.base = s.url(SVC);
    }

    pub async fn start(s: &Server, nickname: &str) -> Customer {
        let v = request_chat(
            s,
            &[
                ("nickname", nickname),
                ("subject", "billing"),
                ("userData[account]", "42"),
            ],
        )
        .await;
        assert_eq!(v["statusCode"], 0, "{v}");
        assert_eq!(v["chatEnded"], false);
        assert_eq!(v["alias"], "1");
        Customer {
            http: reqwest::Client::new(),
            base: s.url(SVC),
            chat_id: v["chatId"].as_str().unwrap().to_owned(),
            user_id: v["userId"].as_str().unwrap().to_owned(),
            secure_key: v["secureKey"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn op(&self, op: &str, extra: &[(&str, &str)]) -> Value {
        let mut form: Vec<(&str, &str)> = vec![
            ("userId", &self.user_id),
            ("secureKey", &self.secure_key),
            ("alias", "1"),
        ];
        form.extend_from_slice(extra);
        let r = self
            .http
            .post(format!("{}/{}/{op}", self.base, self.chat_id))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{op}");
        r.json().await.unwrap()
    }
}

pub struct Agent {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Agent {
    /// Goes on through another node.
    pub fn through(&mut self, s: &Server) {
        self.base = s.url("/gmshub/agent");
    }

    pub async fn login(s: &Server, agent: &str, password: &str) -> Agent {
        let http = reqwest::Client::new();
        let r = http
            .post(s.url("/gmshub/agent/login"))
            .json(&json!({"agent": agent, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        Agent {
            http,
            base: s.url("/gmshub/agent"),
            token: v["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}
