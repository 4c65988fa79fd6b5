//! The contract of the cluster lock (SPEC §5): exclusive, expiring, fenced, conditional.

use super::*;

pub async fn lock_is_exclusive_and_names_its_holder(a: &Adapters) {
    // GIVEN run r1 of job j1 holds cluster c1
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    let first = a.take_lock("c1", &run, at(0)).await;
    assert_eq!(first.operation, "scheduled-backup");
    assert_eq!(first.since, at(0));
    assert_eq!(first.expires, at(1));
    // WHEN someone else tries, before the lease ends
    let op = holder("expand-disk", None, None);
    let other = a.try_lock("c1", &op, at(0) + Duration::seconds(30)).await;
    // THEN they fail at once, told who holds it and since when
    let h = held(other);
    assert_eq!(h.operation, "scheduled-backup");
    assert_eq!(h.job_id.as_deref(), Some("j1"));
    assert_eq!(h.run_id.as_deref(), Some("r1"));
    assert_eq!(h.since, at(0));
    assert_eq!(h.fencing_token, first.fencing_token);
    // AND the holder is what `current` reports
    let current = a.lock.current("c1", at(0)).await.unwrap().unwrap();
    assert_eq!(current, first);
}

pub async fn lock_expires_at_its_absolute_expiry(a: &Adapters) {
    let first = a
        .take_lock("c1", &holder("expand-disk", None, None), at(0))
        .await;
    // GIVEN a holder that crashed: one second before expiry the lock is still held
    let manual = holder("manual-backup", None, Some("b1"));
    a.refused_lock("c1", &manual, at(1) - Duration::seconds(1))
        .await;
    // WHEN its lease has ended THEN `current` reports no holder and the next caller gets it
    let after = at(1) + Duration::seconds(1);
    assert_eq!(a.lock.current("c1", after).await.unwrap(), None);
    let second = a.take_lock("c1", &manual, after).await;
    assert!(second.fencing_token > first.fencing_token);
    assert_eq!(second.operation, "manual-backup");
    assert_eq!(second.since, after);
}

pub async fn fencing_tokens_only_grow(a: &Adapters) {
    let op = holder("expand-disk", None, None);
    let mut last = 0;
    for i in 0..5 {
        let info = a.take_lock("c1", &op, at(i * 10)).await;
        assert!(
            info.fencing_token > last,
            "token {} after {last}",
            info.fencing_token
        );
        last = info.fencing_token;
        // Alternate between a clean release and an abandoned lease.
        if i % 2 == 0 {
            assert!(a.lock.release("c1", info.fencing_token).await.unwrap());
        }
    }
}

pub async fn release_is_conditional_on_the_holder(a: &Adapters) {
    let info = a
        .take_lock("c1", &holder("expand-disk", None, None), at(0))
        .await;
    // WHEN a stale token releases THEN nothing changes
    assert!(!a.lock.release("c1", info.fencing_token + 1).await.unwrap());
    assert!(!a
        .lock
        .release("c1", info.fencing_token.saturating_sub(1))
        .await
        .unwrap());
    assert_eq!(
        a.lock.current("c1", at(0)).await.unwrap(),
        Some(info.clone())
    );
    // WHEN the holder releases THEN the lock is free, and a second release changes nothing
    assert!(a.lock.release("c1", info.fencing_token).await.unwrap());
    assert_eq!(a.lock.current("c1", at(0)).await.unwrap(), None);
    assert!(!a.lock.release("c1", info.fencing_token).await.unwrap());
    // AND releasing an unknown cluster's lock changes nothing
    assert!(!a.lock.release("never-locked", 1).await.unwrap());
    // AND a stale holder cannot release its successor's lock
    let next = a
        .take_lock("c1", &holder("manual-backup", None, Some("b")), at(0))
        .await;
    assert!(!a.lock.release("c1", info.fencing_token).await.unwrap());
    assert_eq!(a.lock.current("c1", at(0)).await.unwrap(), Some(next));
}

pub async fn renew_extends_only_the_current_holder(a: &Adapters) {
    let run = holder("scheduled-backup", Some("j"), Some("r"));
    let first = a.take_lock("c1", &run, at(0)).await;
    // WHEN the holder renews before expiry THEN the expiry moves, nothing else
    let renewed = a
        .lock
        .renew(
            "c1",
            first.fencing_token,
            at(0) + Duration::seconds(40),
            LEASE,
        )
        .await
        .unwrap()
        .expect("the holder renews");
    assert_eq!(renewed.expires, at(0) + Duration::seconds(100));
    assert_eq!(renewed.since, first.since);
    assert_eq!(renewed.fencing_token, first.fencing_token);
    let op = holder("expand-disk", None, None);
    a.refused_lock("c1", &op, at(1) + Duration::seconds(30))
        .await;
    // WHEN its lease expires and someone else takes the lock
    let second = a.take_lock("c1", &op, at(2)).await;
    // THEN the old holder's renewal fails and the new holder keeps the lock
    let stale = a.lock.renew("c1", first.fencing_token, at(2), LEASE).await;
    assert_eq!(stale.unwrap(), None);
    assert_eq!(
        a.lock.current("c1", at(2)).await.unwrap(),
        Some(second.clone())
    );
    // AND a renewal after one's own expiry (nobody took it) fails too: the lease is over
    assert!(a.lock.release("c1", second.fencing_token).await.unwrap());
    let third = a.take_lock("c1", &op, at(10)).await;
    let late = a.lock.renew("c1", third.fencing_token, at(12), LEASE).await;
    assert_eq!(late.unwrap(), None);
}

pub async fn concurrent_acquisitions_have_one_winner(a: &Adapters) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let lock = a.lock.clone();
        tasks.push(tokio::spawn(async move {
            let run = format!("r{i}");
            lock.try_acquire(
                "c1",
                &holder("scheduled-backup", Some("j"), Some(&run)),
                at(0),
                LEASE,
            )
            .await
            .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Acquisition::Acquired(info) = t.await.unwrap() {
            winners.push(info);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 20 concurrent callers gets the lock"
    );
    let current = a.lock.current("c1", at(0)).await.unwrap().unwrap();
    assert_eq!(current.run_id, winners[0].run_id);
}

pub async fn locks_of_different_clusters_are_independent(a: &Adapters) {
    let op = holder("expand-disk", None, None);
    a.take_lock("c1", &op, at(0)).await;
    let other = a.take_lock("c2", &op, at(0)).await;
    assert!(a.lock.release("c2", other.fencing_token).await.unwrap());
    assert!(a.lock.current("c1", at(0)).await.unwrap().is_some());
}
