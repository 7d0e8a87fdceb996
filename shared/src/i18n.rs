//! Every word a person reads, in Korean and English: one place per word. The plan this product
//! was written from is Korean and fixes some words verbatim (state labels, alert messages,
//! the Redis banner); those are used as it writes them.
//!
//! Fixed words are [`Word`]s, declared with [`words!`], which takes exactly one Korean and one
//! English text per word: a word missing in either language does not compile. Words with
//! values in them (a name, a count) are methods of [`Lang`] that `match` on it, so a language
//! without its text does not compile either. The JSON API never goes through here: states,
//! statuses and reasons stay the same words in both languages.

use serde::{Deserialize, Serialize};

/// A language of the dashboard and the alerts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ko,
    /// Where nothing says otherwise (most users read English).
    #[default]
    En,
}

impl Lang {
    pub const ALL: [Self; 2] = [Self::Ko, Self::En];

    /// The code of `<html lang>`, `?lang=`, the cookie and `ALERT_LANGUAGE`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ko => "ko",
            Self::En => "en",
        }
    }

    /// `ko`, `ko-KR`, `EN`, `en-US`, …; `None` for any other language.
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ko" => Some(Self::Ko),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The language an `Accept-Language` header prefers among ours (highest `q` first, the
    /// header's order among equals); `None` when it names neither.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(u16, Self)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Self::parse) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), |q| {
                    q.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .map(|q| (q * 1000.0) as u16)
                });
            match q {
                Some(q) if q > 0 && best.is_none_or(|(b, _)| q > b) => best = Some((q, lang)),
                _ => {}
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The dashboard's language for one request: `?lang=` first, then the cookie a switch
    /// left, then the browser's `Accept-Language`, else English.
    pub fn choose(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Self {
        query
            .and_then(Self::parse)
            .or_else(|| cookie.and_then(Self::parse))
            .or_else(|| accept.and_then(Self::from_accept_language))
            .unwrap_or_default()
    }

    /// A fixed word in this language.
    pub fn t(self, word: Word) -> &'static str {
        word.text(self)
    }
}

/// Declares the [`Word`]s: `Name => "한국어", "English";` — both or it does not compile.
macro_rules! words {
    ($($(#[$doc:meta])* $name:ident => $ko:expr, $en:expr;)*) => {
        /// A fixed word or sentence of the pages; [`Lang::t`] gives its text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Word {
            $($(#[$doc])* $name,)*
        }

        impl Word {
            /// Every word, for the tests that read them all.
            pub const ALL: &'static [Word] = &[$(Word::$name,)*];

            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $(
                        (Word::$name, Lang::Ko) => $ko,
                        (Word::$name, Lang::En) => $en,
                    )*
                }
            }
        }
    };
}

words! {
    // The plan's state labels (SPEC §5), verbatim.
    StateDown => "🔴 다운", "🔴 down";
    StatePaused => "⏸ 작업중(트레이딩)", "⏸ paused (trading)";
    StateProcessing => "⚙️ 처리 중", "⚙️ processing";
    StateMarketOpen => "📈 장중", "📈 market open";
    StateMarketClosed => "🌙 휴장", "🌙 market closed";
    StateIdle => "🟢 대기", "🟢 idle";
    // Link statuses as a person reads them (the JSON keeps healthy/paused/…).
    StatusHealthy => "정상", "healthy";
    StatusPaused => "일시정지", "paused";
    StatusDegraded => "실패 누적", "degraded";
    StatusDown => "다운", "down";
    StatusUnknown => "알 수 없음", "unknown";
    // Worker kinds.
    KindRender => "렌더", "render";
    KindWatcher => "감시", "watcher";
    KindTrader => "트레이더", "trader";
    KindUnknown => "알 수 없음", "unknown";
    // Pages and navigation.
    InfraTitle => "Infra — NODE PIPELINE", "Infra — NODE PIPELINE";
    InfraSubtitle => "NAS ↔ Windows 워커 파이프라인 실시간 상태", "Live status of the NAS ↔ Windows worker pipeline";
    AgentsTitle => "에이전트 — 컨트롤 플레인", "Agents — control plane";
    NavInfra => "인프라", "Infra";
    NavAgents => "에이전트", "Agents";
    NavPages => "페이지", "Pages";
    Language => "언어", "Language";
    PageNotFound => "페이지를 찾을 수 없습니다.", "Page not found.";
    Loading => "불러오는 중…", "Loading…";
    NoDataYet => "아직 데이터가 없습니다.", "No data yet.";
    RefreshFailed => "⚠ 새로 고침 실패 — 마지막으로 받은 데이터를 보여 줍니다", "⚠ refresh failed — showing the last good data";
    // The dashboard.
    ViewLabel => "보기", "View";
    View3d => "3D 파이프라인", "3D pipeline";
    View2d => "2D 카드", "2D cards";
    WorkersLabel => "워커", "Workers";
    /// The plan's banner when the aggregator cannot read Redis, verbatim.
    RedisBanner => "집계 서버/Redis 연결 끊김", "aggregator / Redis disconnected";
    /// The plan's 3D overlay (SPEC §5: "aggregator disconnected").
    AggregatorDisconnected => "집계 서버 연결 끊김", "aggregator disconnected";
    Snapshot => "스냅샷", "Snapshot";
    Discovered => "자동 발견", "discovered";
    Queue => "대기열", "queue";
    DeadLetters => "실패(dead letter)", "dead letters";
    Processing => "처리 중", "processing";
    DoneFailed => "완료/실패", "done/failed";
    RetryDeadLetters => "실패 작업 재시도", "retry dead letters";
    Purge => "비우기", "purge";
    OrbitHint => "드래그: 회전 · 휠: 확대/축소 · 더블클릭: 처음 위치", "drag to orbit · wheel to zoom · double-click to reset";
    PipelineLabel => "파이프라인", "Pipeline";
    /// The scene's parts (the plan's words: NAS server with its gateway, Redis queue bus,
    /// Windows node).
    PartNas => "NAS 서버 · 게이트웨이", "NAS server · gateway";
    PartBus => "Redis 큐 버스", "Redis queue bus";
    PartWindows => "Windows 노드", "Windows node";
    RecentAlerts => "최근 경보", "Recent alerts";
    AlertsOff => "경보 꺼짐 — TELEGRAM_BOT_TOKEN과 TELEGRAM_CHAT_ID, 또는 ALERT_WEBHOOK_URL을 설정하세요.", "Alerts are off — set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID, or ALERT_WEBHOOK_URL.";
    NoAlertsYet => "아직 경보가 없습니다.", "No alerts yet.";
    DeliveryPending => "대기", "pending";
    DeliverySent => "전송됨", "sent";
    DeliveryFailed => "실패", "failed";
    // Big fleets.
    SearchPlaceholder => "워커 이름 앞부분…", "worker name starts with…";
    SearchLabel => "이름으로 워커 찾기", "Search workers by name";
    Search => "찾기", "Search";
    Previous => "‹ 이전", "‹ previous";
    Next => "다음 ›", "next ›";
    AllWorkers => "✕ 전체 워커", "✕ all workers";
    GroupWord => "그룹", "group";
    Groups => "그룹", "Groups";
    GroupsNote => "대규모 플릿: 그룹마다 튜브 하나(가장 나쁜 상태의 색). 그룹을 열면 워커가 보입니다.", "Large fleet: one tube per group (worst status as its colour). Open a group to see its workers.";
    NoWorkers => "워커 없음", "no workers";
    // The agents page.
    AgentsSection => "에이전트", "Agents";
    CommandsSection => "명령", "Commands";
    AuditSection => "감사 기록", "Audit log";
    ReadOnlyNote => "읽기 전용: 이 서버에 OPERATOR_TOKEN이 없어 명령, 라벨 변경, 대기열 작업을 거부합니다. OPERATOR_TOKEN을 설정하고 다시 시작하면 쓸 수 있습니다.", "Read-only: this server has no OPERATOR_TOKEN configured, so commands, label changes and queue actions are refused. Set OPERATOR_TOKEN and restart to enable them.";
    NoAgentData => "아직 에이전트 데이터가 없습니다.", "No agent data yet.";
    NoAgentsYet => "등록된 에이전트가 없습니다. 에이전트는 POST /api/agents/register(AGENT_TOKEN)나 Redis로 등록합니다. README를 보세요.", "No agents registered yet. An agent registers with POST /api/agents/register (AGENT_TOKEN) or through Redis; see the README.";
    Online => "● 온라인", "● online";
    Offline => "○ 오프라인", "○ offline";
    ColAgent => "에이전트", "agent";
    ColState => "상태", "state";
    ColMode => "모드", "mode";
    ColLabels => "라벨", "labels";
    ColLoad => "부하", "load";
    ColPipelines => "파이프라인", "pipelines";
    ColCommand => "명령", "command";
    ColTarget => "대상", "target";
    ColPerAgent => "에이전트별", "per agent";
    ColWhat => "내용", "what";
    SentBy => "보낸 사람 ", "by ";
    ColTime => "시각", "time";
    ColRole => "역할", "role";
    ColFrom => "보낸 곳", "from";
    ColAction => "작업", "action";
    ColOutcome => "결과", "outcome";
    NoCommandsYet => "아직 보낸 명령이 없습니다.", "No commands sent yet.";
    NothingAudited => "아직 감사 기록이 없습니다.", "Nothing audited yet.";
    ViaPubsub => "pub/sub", "pub/sub";
    ViaPoll => "폴링", "poll";
    SendCommand => "명령 보내기", "Send a command";
    FieldType => "종류 ", "type ";
    FieldPipeline => "파이프라인 ", "pipeline ";
    FieldConfig => "설정 (JSON, update_config) ", "config (JSON, update_config) ";
    FieldTarget => "대상", "target";
    OneAgent => " 에이전트 하나 ", " one agent ";
    LabelSelector => " 라벨 셀렉터 ", " label selector ";
    Preview => "미리 보기", "Preview";
    Send => "보내기", "Send";
    Reaches => "받는 에이전트: ", "Reaches: ";
    Nobody => "없음 — 보내면 거부됩니다", "nobody — sending would be refused";
    NoTarget => "에이전트를 고르거나 셀렉터를 쓰세요", "name the agent, or choose a selector";
    OperatorToken => "운영자 토큰 ", "Operator token ";
    SaveAndSend => "저장하고 보내기", "Save and send";
    Cancel => "취소", "Cancel";
    SessionOnly => "이 브라우저 세션에만 보관합니다.", "Kept for this browser session only.";
    /// Buttons of a pipeline (the command words stay in the API).
    VerbStart => "시작", "start";
    VerbStop => "중지", "stop";
    VerbPause => "일시정지", "pause";
    VerbResume => "재개", "resume";
    VerbUpdateConfig => "설정 변경", "update config";
    VerbShutdown => "종료", "shut down";
    // Jobs (SPEC §10).
    NavJobs => "작업", "Jobs";
    JobsTitle => "작업 — 기록과 검색", "Jobs — history and search";
    JobsSearch => "찾기", "Search";
    JobsSearchHint => "id, 페이로드, 출력 속 단어", "id, payload, a word of its output";
    FieldQueue => "큐 ", "queue ";
    FieldStatus => "상태 ", "status ";
    AnyQueue => "모든 큐", "every queue";
    AnyStatus => "모든 상태", "any status";
    ProblemsOnly => "문제만", "problems only";
    ProblemJobs => "문제 — 실패, 만료, 재시도 중", "Problems — dead, expired, retrying";
    RecentJobs => "최근 작업", "Recent jobs";
    NoJobs => "해당하는 작업이 없습니다.", "No jobs match.";
    OlderJobs => "더 오래된 작업 →", "Older →";
    NewestJobs => "← 최신", "← Newest";
    ColJob => "작업", "job";
    ColStatus => "상태", "status";
    ColAttempts => "시도", "attempts";
    ColStarted => "시작", "started";
    ColTook => "걸린 시간", "took";
    ColExit => "종료 코드", "exit";
    ColReason => "이유", "reason";
    JobPayload => "페이로드", "Payload";
    JobAttempts => "시도 기록", "Attempts";
    JobStdout => "표준 출력", "stdout";
    JobStderr => "표준 오류", "stderr";
    JobLive => "실시간 출력", "Live output";
    JobLiveNoJs => "실행 중입니다. JavaScript가 켜져 있으면 출력이 여기에 바로 나옵니다. 새로 고치면 최신 기록을 봅니다.", "Running. With JavaScript its output appears here as it is written; reload for the latest record.";
    JobWhy => "끝난 이유", "Why it ended";
    JobRetry => "이 작업 재시도", "Retry this job";
    JobDependsOn => "선행 작업", "Depends on";
    JobDeadline => "마감", "Deadline";
    JobNotFound => "기록에 없는 작업입니다 (보관 기간이 지났을 수 있습니다).", "No such job in the history (it may have aged out).";
    JobsOfQueue => "작업 기록 →", "jobs →";
    BackToJobs => "← 작업 목록", "← all jobs";
    NoOutput => "(출력 없음)", "(no output)";
    PayloadCut => "(앞부분만 보임)", "(the start of it)";
    // Schedules (SPEC §11).
    NavSchedules => "스케줄", "Schedules";
    SchedulesTitle => "스케줄 — 정해진 시각의 작업", "Schedules — jobs at set times";
    NoSchedules => "스케줄이 없습니다.", "No schedules yet.";
    ColSchedule => "스케줄", "schedule";
    ColCron => "cron 식", "cron";
    ColNextRuns => "다음 실행 (세 번)", "next three runs";
    ColLastRun => "마지막 실행", "last run";
    ColLastJob => "마지막 작업", "last job";
    ScheduleOn => "켜짐", "on";
    ScheduleOff => "꺼짐", "paused";
    EditSchedule => "편집", "edit";
    DeleteSchedule => "삭제", "delete";
    NewSchedule => "새 스케줄", "New schedule";
    EditingSchedule => "스케줄 편집", "Edit schedule";
    FieldName => "이름 ", "name ";
    FieldCron => "cron 식 (5개 필드, 또는 초부터 6개) ", "cron (5 fields, or 6 with seconds first) ";
    FieldTimezone => "시간대 ", "time zone ";
    FieldJob => "작업 (문자열, 또는 id 없는 JSON 엔벌로프) ", "job (a string, or a JSON envelope without id) ";
    FieldEnabled => " 켜기", " enabled";
    SaveSchedule => "저장", "Save";
    PreviewRuns => "다음 실행 미리 보기", "Preview the next runs";
    NextRuns => "다음 실행: ", "Next runs: ";
    // Trends (SPEC §11).
    FleetTrend => "전체 플릿 — 최근 1시간 (분당 완료 / 실패, 큐 깊이)", "The whole fleet — last hour (done / failed a minute, queue depth)";
    ChartDoneFailed => "완료 / 실패", "Jobs done / failed";
    ChartQueueDepth => "큐 깊이 (구간 최대)", "Queue depth (largest in each step)";
    ChartAlive => "살아 있던 비율", "Alive";
    ChartNoData => "이 범위에는 아직 데이터가 없습니다. 수집기가 매 주기 기록합니다.", "No data in this range yet: the collector records every cycle.";
    AlertsInRange => "이 범위의 알림", "Alerts in this range";
    NoAlertsInRange => "이 범위에 알림이 없습니다 (알림 채널이 설정된 경우에만 기록됩니다).", "No alerts in this range (alerts are recorded only when a channel is set).";
    SparkTitle => "최근 1시간, 분당 완료(초록) / 실패(빨강)", "Last hour: done (green) / failed (red) a minute";
    WorkerNow => "지금", "Now";
    WorkerGone => "이 워커는 지금 플릿에 없습니다.", "This worker is not in the fleet now.";
    BackToInfra => "← 인프라", "← Infra";
    TrendsOf => "추이", "Trends";
}

impl Lang {
    /// The plan's down alert: `🔴 [<name>] 워커 다운`.
    pub fn worker_down(self, name: &str) -> String {
        match self {
            Self::Ko => format!("🔴 [{name}] 워커 다운"),
            Self::En => format!("🔴 [{name}] worker down"),
        }
    }

    /// The plan's recovery alert: `🟢 [<name>] 워커 복구`.
    pub fn worker_recovered(self, name: &str) -> String {
        match self {
            Self::Ko => format!("🟢 [{name}] 워커 복구"),
            Self::En => format!("🟢 [{name}] worker recovered"),
        }
    }

    /// The plan's dead-letter alert: `❌ [<name>] 실패 누적 <n>건 (dead-letter)`.
    pub fn dead_letters(self, name: &str, n: u64) -> String {
        match self {
            Self::Ko => format!("❌ [{name}] 실패 누적 {n}건 (dead-letter)"),
            Self::En => format!("❌ [{name}] {n} failed jobs (dead-letter)"),
        }
    }

    pub fn redis_lost(self) -> &'static str {
        match self {
            Self::Ko => "🔴 [agent-office] Redis 연결 끊김 — 워커 경보 중지",
            Self::En => "🔴 [agent-office] Redis unreachable — worker alerts paused",
        }
    }

    pub fn redis_back(self) -> &'static str {
        match self {
            Self::Ko => "🟢 [agent-office] Redis 연결 복구",
            Self::En => "🟢 [agent-office] Redis reachable again",
        }
    }

    /// One line for `n` stray heartbeat keys, naming the first few (`names`, with `…` when
    /// there are more).
    pub fn stray_keys(self, n: usize, names: &str) -> String {
        match self {
            Self::Ko => format!(
                "⚠ [agent-office] 등록되지 않은 하트비트 키 {n}개에 유효한 하트비트가 없음 ({names})"
            ),
            Self::En => format!(
                "⚠ [agent-office] {n} unregistered heartbeat keys hold no valid heartbeat ({names})"
            ),
        }
    }

    /// "last beat 5s ago", "last beat 5 min ago" (from two minutes on) / "no heartbeat" (none
    /// seen by this server).
    pub fn last_beat(self, age_s: Option<i64>) -> String {
        match (self, age_s) {
            (Self::Ko, Some(s)) if s >= 120 => format!("마지막 하트비트 {}분 전", s / 60),
            (Self::Ko, Some(s)) => format!("마지막 하트비트 {s}초 전"),
            (Self::Ko, None) => "하트비트 없음".to_string(),
            (Self::En, Some(s)) if s >= 120 => format!("last beat {} min ago", s / 60),
            (Self::En, Some(s)) => format!("last beat {s}s ago"),
            (Self::En, None) => "no heartbeat".to_string(),
        }
    }

    /// The HUD's second line: `queue 7 · dead 0`.
    pub fn queue_and_dead(self, queue: u64, dead: u64) -> String {
        match self {
            Self::Ko => format!("대기열 {queue} · 실패 {dead}"),
            Self::En => format!("queue {queue} · dead {dead}"),
        }
    }

    /// The Redis banner's tail while data is stale.
    pub fn stale_since(self, since: &str) -> String {
        match self {
            Self::Ko => format!(" — {since} 이후 데이터"),
            Self::En => format!(" — data stale since {since}"),
        }
    }

    /// The 3D overlay's tail: when the last data was read.
    pub fn last_data(self, at: &str) -> String {
        match self {
            Self::Ko => format!(" — 마지막 데이터 {at}"),
            Self::En => format!(" — last data {at}"),
        }
    }

    pub fn queues_paused(self, reason: &str) -> String {
        match self {
            Self::Ko => format!("⏸ 대기열 일시정지 ({reason})"),
            Self::En => format!("⏸ queues paused ({reason})"),
        }
    }

    pub fn scene_unavailable(self, why: &str) -> String {
        match self {
            Self::Ko => format!("3D 보기를 쓸 수 없음 ({why}) — 카드를 보여 줍니다."),
            Self::En => format!("3D view unavailable ({why}) — showing the cards."),
        }
    }

    /// The pager's range line: `201–400 of 2,006 workers, problems first`.
    pub fn page_range(self, first: &str, last: &str, of: &str) -> String {
        match self {
            Self::Ko => format!("워커 {of}개 중 {first}–{last} (문제 먼저)"),
            Self::En => format!("{first}–{last} of {of} workers, problems first"),
        }
    }

    pub fn no_name_starts_with(self, q: &str) -> String {
        match self {
            Self::Ko => format!("“{q}”(으)로 시작하는 워커 없음"),
            Self::En => format!("no worker name starts with “{q}”"),
        }
    }

    pub fn past_the_end(self, of: &str) -> String {
        match self {
            Self::Ko => format!("워커 {of}개의 끝을 지났습니다"),
            Self::En => format!("past the end of {of} workers"),
        }
    }

    /// A group's button: `render-eu · 1,000 workers · 3 down`.
    pub fn group_button(self, name: &str, count: &str, down: u64) -> String {
        let down = match (self, down) {
            (_, 0) => String::new(),
            (Self::Ko, d) => format!(" · 다운 {d}"),
            (Self::En, d) => format!(" · {d} down"),
        };
        match self {
            Self::Ko => format!("{name} · 워커 {count}개{down}"),
            Self::En => format!("{name} · {count} workers{down}"),
        }
    }

    /// A step of a chart, as its tooltip says it: `03:12 — 7 done, 1 failed, queue 40`.
    pub fn chart_step(self, at: &str, done: u64, failed: u64, depth: u64) -> String {
        match self {
            Self::Ko => format!("{at} — 완료 {done}, 실패 {failed}, 큐 {depth}"),
            Self::En => format!("{at} — {done} done, {failed} failed, queue {depth}"),
        }
    }

    /// `7 done, 1 errors` of a pipeline.
    pub fn done_errors(self, done: u64, errors: u64) -> String {
        match self {
            Self::Ko => format!("완료 {done}, 오류 {errors}"),
            Self::En => format!("{done} done, {errors} errors"),
        }
    }

    /// What a flash line says was done: `pause_pipeline image on a1`.
    pub fn command_on(self, kind: &str, pipeline: &str, agent: &str) -> String {
        match self {
            Self::Ko => format!("{agent}의 {pipeline}에 {kind}"),
            Self::En => format!("{kind} {pipeline} on {agent}"),
        }
    }

    pub fn dead_letters_of(self, action: Word, queue: &str) -> String {
        let action = self.t(action);
        match self {
            Self::Ko => format!("{queue}의 실패 작업: {action}"),
            Self::En => format!("{action} the dead letters of {queue}"),
        }
    }

    /// What a command form call is: `pause_pipeline to render-host-1`.
    pub fn command_to(self, kind: &str, target: &str) -> String {
        match self {
            Self::Ko => format!("{target}에 {kind}"),
            Self::En => format!("{kind} to {target}"),
        }
    }

    pub fn preview_of(self, what: &str) -> String {
        match self {
            Self::Ko => format!("미리 보기: {what}"),
            Self::En => format!("preview of {what}"),
        }
    }

    /// The result line of an accepted command.
    pub fn command_sent(self, what: &str, id: &str, targets: &str) -> String {
        match self {
            Self::Ko => format!("✓ {what} — 명령 {id} → {targets}"),
            Self::En => format!("✓ {what} — command {id} to {targets}"),
        }
    }

    pub fn no_answer(self, why: &str) -> String {
        match self {
            Self::Ko => format!("서버가 응답하지 않았습니다: {why}"),
            Self::En => format!("the server did not answer: {why}"),
        }
    }

    pub fn needed_for(self, what: &str) -> String {
        match self {
            Self::Ko => format!("필요한 작업: {what}. "),
            Self::En => format!("Needed for: {what}. "),
        }
    }

    /// A job's status as the pages show it (the API keeps the words of SPEC §10).
    pub fn job_status(self, s: &crate::jobs::JobStatus) -> String {
        use crate::jobs::JobStatus as S;
        let ko = match s {
            S::Waiting => "⏳ 선행 작업 대기",
            S::Running => "⚙️ 실행 중",
            S::Retrying => "🔁 재시도 대기",
            S::Succeeded => "✅ 성공",
            S::Dead => "❌ 실패 (dead)",
            S::Expired => "⌛ 만료",
            S::Other(w) => return w.clone(),
        };
        let en = match s {
            S::Waiting => "⏳ waiting for dependencies",
            S::Running => "⚙️ running",
            S::Retrying => "🔁 retrying",
            S::Succeeded => "✅ succeeded",
            S::Dead => "❌ dead",
            S::Expired => "⌛ expired",
            S::Other(w) => return w.clone(),
        };
        match self {
            Self::Ko => ko.to_string(),
            Self::En => en.to_string(),
        }
    }

    /// What a schedule call was: `delete nightly`.
    pub fn schedule_call(self, verb: Word, name: &str) -> String {
        let verb = self.t(verb);
        match self {
            Self::Ko => format!("스케줄 {name} {verb}"),
            Self::En => format!("{verb} schedule {name}"),
        }
    }

    /// How long a job took: `850 ms`, `12.3 s`, `4 min 5 s`.
    pub fn took(self, ms: u64) -> String {
        let (s, min) = (ms as f64 / 1000.0, ms / 60_000);
        match self {
            Self::Ko if ms < 1000 => format!("{ms}ms"),
            Self::Ko if min == 0 => format!("{s:.1}초"),
            Self::Ko => format!("{min}분 {}초", (ms / 1000) % 60),
            Self::En if ms < 1000 => format!("{ms} ms"),
            Self::En if min == 0 => format!("{s:.1} s"),
            Self::En => format!("{min} min {} s", (ms / 1000) % 60),
        }
    }

    /// An attempt's heading: `attempt 2 · agent-1`.
    pub fn attempt_of(self, n: u32, agent: &str) -> String {
        match self {
            Self::Ko => format!("{n}번째 시도 · {agent}"),
            Self::En => format!("attempt {n} · {agent}"),
        }
    }

    pub fn not_json(self, field: &str, reason: &str) -> String {
        match self {
            Self::Ko => format!("{field}이(가) JSON이 아닙니다: {reason}"),
            Self::En => format!("{field} is not JSON: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_hangul(s: &str) -> bool {
        s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
    }

    /// Words that read the same in both languages on purpose (a name, a protocol).
    const SAME_IN_BOTH: &[Word] = &[Word::InfraTitle, Word::ViaPubsub];

    #[test]
    fn every_word_has_a_text_in_each_language_and_korean_is_korean() {
        for &w in Word::ALL {
            let (ko, en) = (w.text(Lang::Ko), w.text(Lang::En));
            assert!(!ko.trim().is_empty() && !en.trim().is_empty(), "{w:?}");
            if SAME_IN_BOTH.contains(&w) {
                continue;
            }
            assert!(
                has_hangul(ko),
                "{w:?}: the Korean text has no Hangul: {ko:?}"
            );
            assert!(
                !has_hangul(en),
                "{w:?}: the English text has Hangul: {en:?}"
            );
        }
    }

    #[test]
    fn the_plans_words_are_verbatim() {
        let ko = Lang::Ko;
        assert_eq!(
            ko.worker_down("image-render"),
            "🔴 [image-render] 워커 다운"
        );
        assert_eq!(
            ko.worker_recovered("image-render"),
            "🟢 [image-render] 워커 복구"
        );
        assert_eq!(
            ko.dead_letters("image-render", 3),
            "❌ [image-render] 실패 누적 3건 (dead-letter)"
        );
        let labels = [
            (Word::StateDown, "🔴 다운"),
            (Word::StatePaused, "⏸ 작업중(트레이딩)"),
            (Word::StateProcessing, "⚙️ 처리 중"),
            (Word::StateMarketOpen, "📈 장중"),
            (Word::StateMarketClosed, "🌙 휴장"),
            (Word::StateIdle, "🟢 대기"),
            (Word::RedisBanner, "집계 서버/Redis 연결 끊김"),
        ];
        for (w, text) in labels {
            assert_eq!(ko.t(w), text);
        }
        assert!(
            ko.worker_down("x").contains("다운"),
            "the plan's own assertion"
        );
        assert_eq!(Lang::En.worker_down("x"), "🔴 [x] worker down");
        assert_eq!(Lang::En.last_beat(Some(82)), "last beat 82s ago");
        assert_eq!(Lang::En.last_beat(Some(330)), "last beat 5 min ago");
        assert_eq!(Lang::Ko.last_beat(Some(330)), "마지막 하트비트 5분 전");
        assert_eq!(Lang::En.last_beat(None), "no heartbeat");
    }

    #[test]
    fn worded_texts_exist_in_both_languages() {
        for lang in Lang::ALL {
            let texts = [
                lang.worker_down("w"),
                lang.worker_recovered("w"),
                lang.dead_letters("w", 2),
                lang.redis_lost().to_string(),
                lang.redis_back().to_string(),
                lang.stray_keys(3, "a, b, c"),
                lang.last_beat(Some(5)),
                lang.last_beat(None),
                lang.queue_and_dead(7, 0),
                lang.queues_paused("trading"),
                lang.page_range("1", "6", "6"),
                lang.group_button("render-eu", "1,000", 3),
                lang.done_errors(7, 1),
                lang.chart_step("03:12", 7, 1, 40),
            ];
            for t in texts {
                assert_eq!(has_hangul(&t), lang == Lang::Ko, "{lang:?}: {t}");
            }
        }
    }

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        let pick = Lang::from_accept_language;
        assert_eq!(pick("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"), Some(Lang::Ko));
        assert_eq!(pick("en-US,en;q=0.9,ko;q=0.8"), Some(Lang::En));
        assert_eq!(pick("fr-FR,fr;q=0.9,ko;q=0.5,en;q=0.4"), Some(Lang::Ko));
        assert_eq!(pick("de, en;q=0"), None, "q=0 means not wanted");
        assert_eq!(pick("en;q=0.2, ko;q=0.8"), Some(Lang::Ko));
        assert_eq!(pick("ko;q=oops"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("*"), None);
    }

    #[test]
    fn the_query_wins_over_the_cookie_which_wins_over_the_header() {
        let header = Some("ko-KR,ko;q=0.9");
        assert_eq!(Lang::choose(None, None, header), Lang::Ko);
        assert_eq!(Lang::choose(None, Some("en"), header), Lang::En);
        assert_eq!(Lang::choose(Some("ko"), Some("en"), None), Lang::Ko);
        assert_eq!(
            Lang::choose(Some("xx"), Some("en"), header),
            Lang::En,
            "a bad query is ignored"
        );
        assert_eq!(Lang::choose(None, None, None), Lang::En);
        assert_eq!(Lang::parse("KO_kr"), Some(Lang::Ko));
    }
}
